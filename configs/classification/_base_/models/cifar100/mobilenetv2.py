# The KD benchmark's mobile_half, MobileNetV2 at width 0.5 (HobbitLong/RepDistiller
# models/mobilenetv2.py), with a CIFAR-100 head:
# vrm_det.models.backbones.cifar_classifier('MobileNetV2') with the benchmark's normalisation.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='CifarMobileNetV2', widen_factor=0.5),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=1280,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
