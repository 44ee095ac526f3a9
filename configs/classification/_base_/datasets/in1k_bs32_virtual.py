# ImageNet-1k with VRM's virtual view made by the data pipeline (see cifar100_bs64_virtual.py):
# the real crop, and the same crop through RandAugment.
_base_ = ['./in1k_bs32.py']

# timm's rand-m9-mstd0.5 over the increasing policy set, two operations, with the fill value
# and bicubic interpolation of mmpretrain's _base_/datasets/imagenet_bs64_swin_224.py (the
# ImageNet mean pixel in the BGR order images are loaded in).
virtual_view_transform = dict(
    type='RandAugment',
    policies='timm_increasing',
    num_policies=2,
    total_level=10,
    magnitude_level=9,
    magnitude_std=0.5,
    hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='MultiView', num_views=[1, 1], transforms=[[], [virtual_view_transform]]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
