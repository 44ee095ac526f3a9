"""Configs of the KD benchmark's classifiers: backbone, global average pooling, linear head.

The names are the benchmark's own (HobbitLong/RepDistiller
``models/__init__.py``, megvii-research/mdistiller ``mdistiller/models``), the
names its released teachers are filed under (``resnet32x4_vanilla/...``).
"""
from typing import Dict, Tuple

# name -> (backbone config, channels of the pooled features)
CIFAR_BACKBONES: Dict[str, Tuple[dict, int]] = {
    **{name: (dict(type='CifarResNet', arch=name), 64)
       for name in ('resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
                    'resnet110')},
    'resnet8x4': (dict(type='CifarResNet', arch='resnet8x4'), 256),
    'resnet32x4': (dict(type='CifarResNet', arch='resnet32x4'), 256),
    'wrn_40_2': (dict(type='CifarWideResNet', arch='wrn_40_2'), 128),
    'wrn_16_2': (dict(type='CifarWideResNet', arch='wrn_16_2'), 128),
    'wrn_40_1': (dict(type='CifarWideResNet', arch='wrn_40_1'), 64),
    'wrn_16_1': (dict(type='CifarWideResNet', arch='wrn_16_1'), 64),
    **{name: (dict(type='CifarVGG', arch=name), 512)
       for name in ('vgg8', 'vgg11', 'vgg13', 'vgg16', 'vgg19')},
    'MobileNetV2': (dict(type='CifarMobileNetV2', widen_factor=0.5), 1280),
    # The benchmark's CIFAR ResNet50 (3x3 stem, no max pooling, bottleneck stages
    # of widths 64-512 at strides 1, 2, 2, 2) is mmpretrain's ResNet_CIFAR.
    'ResNet50': (dict(type='ResNet_CIFAR', depth=50), 2048),
}

IMAGENET_BACKBONES: Dict[str, Tuple[dict, int]] = {
    'ResNet18': (dict(type='ResNet', depth=18), 512),
    'ResNet34': (dict(type='ResNet', depth=34), 512),
    'ResNet50': (dict(type='ResNet', depth=50), 2048),
    'MobileNetV1': (dict(type='MobileNetV1'), 1024),
}


def _classifier(backbones: Dict[str, Tuple[dict, int]], arch: str, num_classes: int,
                dataset: str) -> dict:
    if arch not in backbones:
        raise KeyError(f'unknown {dataset} network {arch!r}; known: {", ".join(backbones)}')
    backbone, channels = backbones[arch]
    return dict(type='ImageClassifier', backbone=dict(backbone),
                neck=dict(type='GlobalAveragePooling'),
                head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=channels,
                          loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def cifar_classifier(arch: str, num_classes: int = 100) -> dict:
    """Config of the ``ImageClassifier`` that is the benchmark's CIFAR network ``arch``."""
    return _classifier(CIFAR_BACKBONES, arch, num_classes, 'CIFAR')


def imagenet_classifier(arch: str, num_classes: int = 1000) -> dict:
    """Config of the ``ImageClassifier`` that is the benchmark's ImageNet network ``arch``."""
    return _classifier(IMAGENET_BACKBONES, arch, num_classes, 'ImageNet')
