# CIFAR-100 with VRM's virtual view made by the data pipeline: after the benchmark's crop and
# flip, MultiView gives two views of each image, the real one and the same crop through
# RandAugment with n = 2 operations (the VRM paper's virtual view, Zhang et al., ICCV 2025).
# The distiller takes the second view with virtual_view=dict(type='PipelineView'); a loss
# that matches the real view only (KD, DKD, DIST) leaves it unused.
_base_ = ['./cifar100_bs64.py']

# RandAugment as timm's rand-m9-mstd0.5 (magnitude 9 of 10, noise std 0.5) over timm's
# increasing-magnitude policy set, geometric operations included: the setting of mmpretrain's
# _base_/datasets/imagenet_bs64_swin_224.py, used by its DeiT configs. Two operations per
# image (num_policies=2, VRM's n = 2). Rotations and shears fill with CIFAR-100's mean pixel
# (RGB, the benchmark's mean times 255, rounded).
virtual_view_transform = dict(
    type='RandAugment',
    policies='timm_increasing',
    num_policies=2,
    total_level=10,
    magnitude_level=9,
    magnitude_std=0.5,
    hparams=dict(pad_val=[129, 124, 112]))

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='MultiView', num_views=[1, 1], transforms=[[], [virtual_view_transform]]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
