# Student alone: the KD benchmark's resnet8 (78 k parameters at 10 classes).
_base_ = ['./_base_/fashion_mnist.py', './_base_/schedule.py']

model = dict(
    type='ImageClassifier',
    backbone=dict(type='CifarResNet', arch='resnet8'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
