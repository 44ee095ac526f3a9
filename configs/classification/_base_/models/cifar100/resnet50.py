# The KD benchmark's CIFAR ResNet50, 3x3 stem and no max pooling (HobbitLong/RepDistiller
# models/resnetv2.py), with a CIFAR-100 head:
# vrm_det.models.backbones.cifar_classifier('ResNet50') with the benchmark's normalisation.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='ResNet_CIFAR', depth=50),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
