# The KD benchmark's vgg13 (HobbitLong/RepDistiller models/vgg.py) with a CIFAR-100 head:
# vrm_det.models.backbones.cifar_classifier('vgg13') with the benchmark's normalisation.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='CifarVGG', arch='vgg13'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
