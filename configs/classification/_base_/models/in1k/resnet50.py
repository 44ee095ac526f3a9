# ResNet-50 (mmpretrain's ResNet, torchvision's layout) with an ImageNet head:
# vrm_det.models.backbones.imagenet_classifier('ResNet50') with torchvision's normalisation.
_base_ = ['./in1k_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.in1k_preprocessor,
    backbone=dict(type='ResNet', depth=50),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
