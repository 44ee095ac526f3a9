# The KD benchmark's resnet56 (HobbitLong/RepDistiller models/resnet.py) with a CIFAR-100 head:
# vrm_det.models.backbones.cifar_classifier('resnet56') with the benchmark's normalisation.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='CifarResNet', arch='resnet56'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
