# Teacher: the KD benchmark's resnet20 (0.27 M parameters at 10 classes, 3.5x
# the student), trained for 800 iterations (about 51,000 images).
_base_ = ['./_base_/fashion_mnist.py', './_base_/schedule.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', arch='resnet20'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

max_iters = 800
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
train_dataloader = dict(dataset=dict(indices=None))  # all 60,000 training images
