"""The KD benchmark's networks: parameter counts against published figures and
against counts recomputed here from the architectures' formulas; output shapes."""
import math

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS
from torchvision.models import ResNet18_Weights, ResNet34_Weights, ResNet50_Weights

import vrm_det  # noqa: F401  (registers the backbones)
from vrm_det.models.backbones import cifar_classifier, imagenet_classifier
from vrm_det.models.backbones.classifiers import CIFAR_BACKBONES

# Parameters (millions, two decimals) at 100 classes that CIFAR-100 KD papers print for
# the benchmark's networks; see docs/classification.md, "Networks", for the sources.
PUBLISHED_CIFAR_M = {
    'resnet20': 0.28, 'resnet32': 0.47, 'resnet56': 0.86, 'resnet110': 1.74,
    'resnet8x4': 1.23, 'resnet32x4': 7.43,
    'wrn_40_2': 2.26, 'wrn_16_2': 0.70, 'wrn_40_1': 0.57,
    'vgg13': 9.46, 'vgg8': 3.96,
    'MobileNetV2': 0.81, 'ResNet50': 23.71,
}
# ImageNet: torchvision's model documentation (weights meta ``num_params``) for the
# ResNets; Howard et al., "MobileNets" (2017), Table 8, "1.0 MobileNet-224": 4.2 M.
PUBLISHED_IMAGENET = {
    'ResNet18': ResNet18_Weights.IMAGENET1K_V1.meta['num_params'],
    'ResNet34': ResNet34_Weights.IMAGENET1K_V1.meta['num_params'],
    'ResNet50': ResNet50_Weights.IMAGENET1K_V1.meta['num_params'],
}
MOBILENET_V1_PUBLISHED_M = 4.2


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """mmpretrain's models resolve their parts in its default scope; other test
    modules leave mmdet's or mmengine's current."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def num_parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def build(cfg: dict) -> torch.nn.Module:
    return MODELS.build(cfg).eval()


def matches_published(count: int, published: float, decimals: int) -> bool:
    """Papers round or truncate to ``decimals`` places; accept either."""
    value = count / 1e6
    scale = 10 ** decimals
    return round(value, decimals) == published or math.floor(value * scale) / scale == published


@pytest.mark.parametrize('arch', sorted(PUBLISHED_CIFAR_M))
def test_cifar_parameter_count_matches_the_published_figure(arch):
    count = num_parameters(build(cifar_classifier(arch, num_classes=100)))
    assert matches_published(count, PUBLISHED_CIFAR_M[arch], 2), (arch, count)


@pytest.mark.parametrize('arch', sorted(PUBLISHED_IMAGENET))
def test_imagenet_resnet_parameter_count_is_torchvision_s(arch):
    assert num_parameters(build(imagenet_classifier(arch))) == PUBLISHED_IMAGENET[arch]


def test_mobilenet_v1_parameter_count_and_output_shape():
    model = build(imagenet_classifier('MobileNetV1'))
    assert matches_published(num_parameters(model), MOBILENET_V1_PUBLISHED_M, 1)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
        assert model.backbone(torch.randn(1, 3, 224, 224))[-1].shape == (1, 1024, 7, 7)


@pytest.mark.parametrize('arch', sorted(CIFAR_BACKBONES))
def test_cifar_classifier_gives_100_logits_from_non_negative_features(arch):
    """The last feature map leaves a ReLU (the benchmark pools after one)."""
    model = build(cifar_classifier(arch))
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model(inputs).shape == (2, 100)
        features = model.backbone(inputs)[-1]
    assert features.min() >= 0 and (features == 0).any(), arch


# Counts recomputed from the architectures (RepDistiller models/*.py), layer by layer.
def conv_bn(in_channels: int, out_channels: int, kernel: int, bias: bool = False) -> int:
    return in_channels * out_channels * kernel * kernel + out_channels * (3 if bias else 2)


def linear(in_features: int, classes: int) -> int:
    return in_features * classes + classes


def cifar_resnet_count(depth: int, widths, classes: int = 100) -> int:
    blocks = (depth - 2) // 6
    total, channels = conv_bn(3, widths[0], 3), widths[0]
    for width, stride in zip(widths[1:], (1, 2, 2)):
        for block in range(blocks):
            total += conv_bn(channels, width, 3) + conv_bn(width, width, 3)
            if block == 0 and (stride != 1 or channels != width):
                total += conv_bn(channels, width, 1)
            channels = width
    return total + linear(channels, classes)


def wide_resnet_count(depth: int, widen: int, classes: int = 100) -> int:
    blocks = (depth - 4) // 6
    total, channels = 3 * 16 * 9, 16
    for width in (16 * widen, 32 * widen, 64 * widen):
        for _ in range(blocks):
            total += 2 * channels + channels * width * 9 + 2 * width + width * width * 9
            if channels != width:
                total += channels * width
            channels = width
    return total + 2 * channels + linear(channels, classes)


def vgg_count(stages, classes: int = 100) -> int:
    total, channels = 0, 3
    for widths in stages:
        for width in widths:
            total += conv_bn(channels, width, 3, bias=True)
            channels = width
    return total + linear(512, classes)


def cifar_mobilenet_v2_count(widen: float = 0.5, expansion: int = 6, classes: int = 100) -> int:
    total, channels = conv_bn(3, int(32 * widen), 3), int(32 * widen)
    for t, c, n in ((1, 16, 1), (expansion, 24, 2), (expansion, 32, 3), (expansion, 64, 4),
                    (expansion, 96, 3), (expansion, 160, 3), (expansion, 320, 1)):
        width = int(c * widen)
        for _ in range(n):
            hidden = channels * t
            total += conv_bn(channels, hidden, 1) + hidden * 9 + 2 * hidden
            total += conv_bn(hidden, width, 1)
            channels = width
    return total + conv_bn(channels, 1280, 1) + linear(1280, classes)


@pytest.mark.parametrize('arch,depth,widths', [
    ('resnet8', 8, (16, 16, 32, 64)), ('resnet14', 14, (16, 16, 32, 64)),
    ('resnet20', 20, (16, 16, 32, 64)), ('resnet32', 32, (16, 16, 32, 64)),
    ('resnet44', 44, (16, 16, 32, 64)), ('resnet56', 56, (16, 16, 32, 64)),
    ('resnet110', 110, (16, 16, 32, 64)), ('resnet8x4', 8, (32, 64, 128, 256)),
    ('resnet32x4', 32, (32, 64, 128, 256))])
def test_cifar_resnet_count_follows_its_formula(arch, depth, widths):
    assert num_parameters(build(cifar_classifier(arch))) == cifar_resnet_count(depth, widths)


@pytest.mark.parametrize('arch,depth,widen', [
    ('wrn_40_2', 40, 2), ('wrn_16_2', 16, 2), ('wrn_40_1', 40, 1), ('wrn_16_1', 16, 1)])
def test_wide_resnet_count_follows_its_formula(arch, depth, widen):
    assert num_parameters(build(cifar_classifier(arch))) == wide_resnet_count(depth, widen)


@pytest.mark.parametrize('arch,stages', [
    ('vgg8', ((64, ), (128, ), (256, ), (512, ), (512, ))),
    ('vgg13', ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512))),
    ('vgg19', ((64, 64), (128, 128), (256, ) * 4, (512, ) * 4, (512, ) * 4))])
def test_vgg_count_follows_its_formula(arch, stages):
    assert num_parameters(build(cifar_classifier(arch))) == vgg_count(stages)


def test_cifar_mobilenet_v2_count_follows_its_formula():
    assert num_parameters(build(cifar_classifier('MobileNetV2'))) == cifar_mobilenet_v2_count()


def test_feature_maps_of_the_requested_stages():
    backbone = MODELS.build(dict(type='CifarResNet', arch='resnet8x4', out_indices=(0, 1, 2)))
    shapes = [tuple(feature.shape) for feature in backbone(torch.randn(1, 3, 32, 32))]
    assert shapes == [(1, 64, 32, 32), (1, 128, 16, 16), (1, 256, 8, 8)]
    vgg = MODELS.build(dict(type='CifarVGG', arch='vgg8', out_indices=(2, -1)))
    shapes = [tuple(feature.shape) for feature in vgg(torch.randn(1, 3, 32, 32))]
    assert shapes == [(1, 256, 8, 8), (1, 512, 4, 4)]


@pytest.mark.parametrize('cfg,error', [
    (dict(type='CifarResNet', arch='resnet9'), KeyError),
    (dict(type='CifarResNet', arch=dict(depth=10, widths=(16, 16, 32, 64))), ValueError),
    (dict(type='CifarWideResNet', arch='wrn_28_10'), KeyError),
    (dict(type='CifarVGG', out_indices=(5, )), ValueError)])
def test_bad_settings_fail_at_build_time(cfg, error):
    with pytest.raises(error):
        MODELS.build(cfg)
