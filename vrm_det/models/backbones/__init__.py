"""The KD benchmark's networks as mmpretrain backbones (see ``classifiers`` for
the full classifiers)."""
from .cifar_mobilenet_v2 import CifarMobileNetV2
from .cifar_resnet import CifarResNet
from .cifar_vgg import CifarVGG
from .cifar_wide_resnet import CifarWideResNet
from .classifiers import cifar_classifier, imagenet_classifier
from .mobilenet_v1 import MobileNetV1

__all__ = ['CifarResNet', 'CifarWideResNet', 'CifarVGG', 'CifarMobileNetV2', 'MobileNetV1',
           'cifar_classifier', 'imagenet_classifier']
