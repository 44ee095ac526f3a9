# The KD benchmark's wrn_16_2 (HobbitLong/RepDistiller models/wrn.py) with a CIFAR-100 head:
# vrm_det.models.backbones.cifar_classifier('wrn_16_2') with the benchmark's normalisation.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='CifarWideResNet', arch='wrn_16_2'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=100, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
