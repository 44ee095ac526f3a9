# VRM: resnet20 -> resnet8 with the paper's loss (unit edges: VRMLoss's default
# edge_floor 0), its classification weights (alpha 128, beta 32) and its virtual view: RandAugment with two operations per
# image, geometric ones included, made by the data pipeline (mmpretrain's
# MultiView: the real view, and the same crop and flip through RandAugment).
_base_ = ['./resnet8_fashion-mnist.py']

teacher_ckpt = 'work_dirs/demo_cls/teacher/iter_800.pth'

# timm's rand-m9-mstd0.5 setting, as mmpretrain's DeiT configs use it
# (configs/_base_/datasets/imagenet_bs64_swin_224.py there); pad with black,
# Fashion-MNIST's background.
rand_augment = dict(type='RandAugment', policies='timm_increasing', num_policies=2,
                    total_level=10, magnitude_level=9, magnitude_std=0.5,
                    hparams=dict(pad_val=0))
train_dataloader = dict(dataset=dict(pipeline=[
    *_base_.real_view,
    dict(type='MultiView', num_views=[1, 1], transforms=[[], [rand_augment]]),
    dict(type='PackInputs'),
]))

model = dict(
    _delete_=True,
    type='ImageClassifierDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/resnet20_fashion-mnist.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=dict(type='VRMLoss', alpha=128.0, beta=32.0, keep_percentile=95),
    virtual_view=dict(type='PipelineView'),
    distill_warmup_iters=20)

custom_hooks = [dict(type='DistillStatsHook', interval=1)]
