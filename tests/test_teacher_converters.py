"""Released teacher weights convert into mmpretrain classifiers that compute the same logits.

The released networks are rebuilt here in plain torch with the module names of the
KD benchmark's code (HobbitLong/RepDistiller ``models/*.py``), independently of
``vrm_det``'s backbones; ImageNet teachers are torchvision's ResNets.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS
from torch import nn

import vrm_det  # noqa: F401  (registers the backbones, installs the safe loader)
from vrm_det.checkpoint import UntrustedCheckpointError
from vrm_det.checkpoint_conversion import CIFAR_TEACHERS, TORCHVISION_TEACHERS, convert_teacher_file
from vrm_det.models.backbones import cifar_classifier, imagenet_classifier

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def mmpretrain_scope():
    """mmpretrain's models resolve their parts in its default scope; other test
    modules leave mmdet's or mmengine's current."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


class ReleasedResNetBlock(nn.Module):
    def __init__(self, in_channels, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or in_channels != width:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, width, 1, stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ReleasedResNet(nn.Module):
    """resnet8x4 and friends: conv1, bn1, layer1-3, fc; AvgPool2d(8)."""

    def __init__(self, depth, widths, classes=100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        channels = widths[0]
        for index, (width, stride) in enumerate(zip(widths[1:], (1, 2, 2))):
            blocks = []
            for block in range((depth - 2) // 6):
                blocks.append(ReleasedResNetBlock(channels, width, stride if block == 0 else 1))
                channels = width
            setattr(self, f'layer{index + 1}', nn.Sequential(*blocks))
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.avg_pool2d(x, 8).flatten(1))


class ReleasedWideBlock(nn.Module):
    def __init__(self, in_channels, width, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.equal = in_channels == width
        if not self.equal:
            self.convShortcut = nn.Conv2d(in_channels, width, 1, stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.equal else self.convShortcut(pre))


class ReleasedNetworkBlock(nn.Module):
    def __init__(self, blocks, in_channels, width, stride):
        super().__init__()
        self.layer = nn.Sequential(*[
            ReleasedWideBlock(in_channels if i == 0 else width, width, stride if i == 0 else 1)
            for i in range(blocks)])

    def forward(self, x):
        return self.layer(x)


class ReleasedWideResNet(nn.Module):
    """wrn_d_w: conv1, block1-3.layer.i, bn1, fc; avg_pool2d(8)."""

    def __init__(self, depth, widen, classes=100):
        super().__init__()
        widths = (16 * widen, 32 * widen, 64 * widen)
        blocks = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.block1 = ReleasedNetworkBlock(blocks, 16, widths[0], 1)
        self.block2 = ReleasedNetworkBlock(blocks, widths[0], widths[1], 2)
        self.block3 = ReleasedNetworkBlock(blocks, widths[1], widths[2], 2)
        self.bn1 = nn.BatchNorm2d(widths[2])
        self.fc = nn.Linear(widths[2], classes)

    def forward(self, x):
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(F.avg_pool2d(F.relu(self.bn1(x)), 8).flatten(1))


class ReleasedVGG(nn.Module):
    """vgg*_bn: block0-4 (conv, BN, ReLU; the last ReLU dropped), classifier."""

    def __init__(self, stages, classes=100):
        super().__init__()
        channels = 3
        for index, widths in enumerate(stages):
            layers = []
            for width in widths:
                layers += [nn.Conv2d(channels, width, 3, 1, 1), nn.BatchNorm2d(width), nn.ReLU()]
                channels = width
            setattr(self, f'block{index}', nn.Sequential(*layers[:-1]))
        self.classifier = nn.Linear(512, classes)

    def forward(self, x):
        for index in range(5):
            x = F.relu(getattr(self, f'block{index}')(x))
            if index < 3:
                x = F.max_pool2d(x, 2)
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class ReleasedInvertedResidual(nn.Module):
    def __init__(self, in_channels, width, stride, expansion):
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == width
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.Conv2d(hidden, width, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


class ReleasedMobileNetV2(nn.Module):
    """mobile_half: conv1, blocks.i.j.conv, conv2, classifier.0; AvgPool2d(2)."""

    def __init__(self, classes=100):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16),
                                   nn.ReLU())
        self.blocks = nn.ModuleList()
        channels = 16
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
                           (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
            layers = []
            for i in range(n):
                layers.append(ReleasedInvertedResidual(channels, c // 2, s if i == 0 else 1, t))
                channels = c // 2
            self.blocks.append(nn.Sequential(*layers))
        self.conv2 = nn.Sequential(nn.Conv2d(channels, 1280, 1, bias=False),
                                   nn.BatchNorm2d(1280), nn.ReLU())
        self.classifier = nn.Sequential(nn.Linear(1280, classes))

    def forward(self, x):
        x = self.conv1(x)
        for group in self.blocks:
            x = group(x)
        return self.classifier(F.avg_pool2d(self.conv2(x), 2).flatten(1))


class ReleasedBottleneck(nn.Module):
    def __init__(self, in_channels, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != planes * 4:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, planes * 4, 1, stride, bias=False),
                nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ReleasedResNet50(nn.Module):
    """The CIFAR ResNet50: conv1, bn1, layer1-4 (shortcut), linear; adaptive average pool."""

    def __init__(self, classes=100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        channels = 64
        for index, (planes, blocks, stride) in enumerate(
                ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))):
            layers = []
            for i in range(blocks):
                layers.append(ReleasedBottleneck(channels, planes, stride if i == 0 else 1))
                channels = planes * 4
            setattr(self, f'layer{index + 1}', nn.Sequential(*layers))
        self.linear = nn.Linear(2048, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


RELEASED_CIFAR = {
    'resnet8x4': lambda: ReleasedResNet(8, (32, 64, 128, 256)),
    'resnet20': lambda: ReleasedResNet(20, (16, 16, 32, 64)),
    'wrn_16_2': lambda: ReleasedWideResNet(16, 2),
    'wrn_16_1': lambda: ReleasedWideResNet(16, 1),
    'vgg8': lambda: ReleasedVGG(((64, ), (128, ), (256, ), (512, ), (512, ))),
    'MobileNetV2': ReleasedMobileNetV2,
    'ResNet50': ReleasedResNet50,
}


def trained_looking(network: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and batch-norm statistics, so that no tensor is left at its default."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if name.endswith('running_var'):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.is_floating_point():
                scale = 0.1 if name.endswith(('running_mean', 'bias')) else 1.0
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.mul_((2.0 / fan_in) ** 0.5)
    return network.eval()


def save_released(path: Path, network: nn.Module, **extra) -> None:
    """The released layout: {'epoch', 'model', 'accuracy', 'optimizer'} (RepDistiller)."""
    torch.save(dict(epoch=240, model=network.state_dict(), accuracy=torch.tensor(79.42),
                    optimizer=dict(state={}, param_groups=[dict(lr=0.0005, momentum=0.9,
                                                                params=[0, 1])]),
                    **extra), path)


def converted_classifier(path: Path, cfg: dict) -> nn.Module:
    model = MODELS.build(cfg)
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    return model.eval()


@pytest.mark.parametrize('arch', sorted(RELEASED_CIFAR))
def test_cifar_teacher_converts_to_a_classifier_with_the_same_logits(arch, tmp_path):
    released = trained_looking(RELEASED_CIFAR[arch]())
    save_released(tmp_path / 'ckpt_epoch_240.pth', released)
    count = convert_teacher_file(str(tmp_path / 'ckpt_epoch_240.pth'),
                                 str(tmp_path / 'teacher.pth'), arch, CIFAR_TEACHERS)
    assert count == len(released.state_dict())
    model = converted_classifier(tmp_path / 'teacher.pth', cifar_classifier(arch))
    inputs = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = released(inputs), model(inputs)
    assert expected.std() > 0.1
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    meta = torch.load(tmp_path / 'teacher.pth', weights_only=True)['meta']
    assert meta['arch'] == arch and meta['classifier'] == cifar_classifier(arch)


@pytest.mark.parametrize('arch,build_torchvision', [
    ('ResNet34', torchvision.models.resnet34), ('ResNet50', torchvision.models.resnet50)])
def test_torchvision_teacher_converts_to_a_classifier_with_the_same_logits(
        arch, build_torchvision, tmp_path):
    released = trained_looking(build_torchvision())
    torch.save(released.state_dict(), tmp_path / 'torchvision.pth')
    convert_teacher_file(str(tmp_path / 'torchvision.pth'), str(tmp_path / 'teacher.pth'), arch,
                         TORCHVISION_TEACHERS)
    model = converted_classifier(tmp_path / 'teacher.pth', imagenet_classifier(arch))
    inputs = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), released(inputs), rtol=1e-4, atol=1e-4)


def test_files_without_batch_counters_or_with_data_parallel_names_convert(tmp_path):
    """Files written before PyTorch 0.4.1 have no num_batches_tracked; DataParallel adds module."""
    released = trained_looking(RELEASED_CIFAR['resnet20']())
    state = {'module.' + key: value for key, value in released.state_dict().items()
             if not key.endswith('num_batches_tracked')}
    torch.save(dict(model=state), tmp_path / 'old.pth')
    convert_teacher_file(str(tmp_path / 'old.pth'), str(tmp_path / 'teacher.pth'), 'resnet20',
                         CIFAR_TEACHERS)
    model = converted_classifier(tmp_path / 'teacher.pth', cifar_classifier('resnet20'))
    inputs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), released(inputs), rtol=1e-4, atol=1e-4)


def test_a_file_with_a_pickled_object_is_refused_with_what_to_do(tmp_path):
    """RepDistiller's *_last.pth files also pickle the argparse options."""
    source = tmp_path / 'resnet8x4_last.pth'
    save_released(source, RELEASED_CIFAR['resnet8x4'](), opt=argparse.Namespace(model='x'))
    with pytest.raises(UntrustedCheckpointError) as raised:
        convert_teacher_file(str(source), str(tmp_path / 'teacher.pth'), 'resnet8x4',
                             CIFAR_TEACHERS)
    message = str(raised.value)
    assert str(source) in message and 'argparse.Namespace' in message
    assert 'weights_only=False)["model"]' in message
    assert not (tmp_path / 'teacher.pth').exists()


def test_wrong_arch_names_the_arch_the_weights_fit(tmp_path):
    save_released(tmp_path / 'ckpt_epoch_240.pth', RELEASED_CIFAR['resnet8x4']())
    with pytest.raises(ValueError, match=r'not a resnet32x4 network.*fit --arch resnet8x4'):
        convert_teacher_file(str(tmp_path / 'ckpt_epoch_240.pth'), str(tmp_path / 'out.pth'),
                             'resnet32x4', CIFAR_TEACHERS)
    assert not (tmp_path / 'out.pth').exists()


def test_command_line_tool_reports_a_wrong_arch(tmp_path):
    save_released(tmp_path / 'ckpt_epoch_240.pth', RELEASED_CIFAR['wrn_16_2']())
    result = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'convert_cifar_teacher.py'),
         str(tmp_path / 'ckpt_epoch_240.pth'), str(tmp_path / 'out.pth'), '--arch', 'wrn_40_2'],
        capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1'))
    assert result.returncode != 0
    assert 'not a wrn_40_2 network' in result.stderr and 'fit --arch wrn_16_2' in result.stderr
