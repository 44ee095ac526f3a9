# MobileNetV1 (the "MobileNet" of the ResNet-50 -> MobileNet pair) with an ImageNet head:
# vrm_det.models.backbones.imagenet_classifier('MobileNetV1') with torchvision's normalisation.
_base_ = ['./in1k_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.in1k_preprocessor,
    backbone=dict(type='MobileNetV1'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=1024,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
