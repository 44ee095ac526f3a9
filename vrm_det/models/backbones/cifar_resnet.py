"""The CIFAR ResNets of the KD benchmark (resnet8 ... resnet110, resnet8x4, resnet32x4).

Layout (HobbitLong/RepDistiller ``models/resnet.py``, the same in
megvii-research/mdistiller ``mdistiller/models/cifar/resnet.py``): a 3x3 stem
convolution with batch norm and ReLU, then three stages of ``(depth - 2) / 6``
basic blocks at strides 1, 2, 2. The classifier averages the last 8x8 map
(``AvgPool2d(8)`` on 32x32 inputs, the same as global average pooling) and
applies one linear layer. Every block ends with a ReLU after the residual sum,
so the pooled features are non-negative.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from vrm_det.registry import register_model

from .common import CONV_BN_INIT, check_out_indices, preset


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1, no bias (a batch norm follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection, ReLU after the sum.

    The shortcut is a strided 1x1 convolution with batch norm when the stride
    or the width changes, the identity otherwise.

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of the output.
        stride (int): Stride of the first convolution and of the shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@register_model
class CifarResNet(BaseModule):
    """ResNet for 32x32 inputs with three stages of basic blocks.

    Args:
        arch (str | dict): A preset name (``'resnet8'``, ``'resnet14'``,
            ``'resnet20'``, ``'resnet32'``, ``'resnet44'``, ``'resnet56'``,
            ``'resnet110'``, ``'resnet8x4'``, ``'resnet32x4'``) or a dict with
            ``depth`` (``6n + 2``) and ``widths`` (stem width, then the width
            of each of the three stages).
        out_indices (Sequence[int]): Stages whose output is returned, 0 to 2.
        init_cfg (dict | list, optional): Initialisation config.

    Feature maps on an (N, 3, 32, 32) input: stage 0 (N, w1, 32, 32), stage 1
    (N, w2, 16, 16), stage 2 (N, w3, 8, 8).
    """
    # Depth and (stem, stage 1, stage 2, stage 3) widths of the benchmark's presets.
    arch_settings: Dict[str, dict] = {
        'resnet8': dict(depth=8, widths=(16, 16, 32, 64)),
        'resnet14': dict(depth=14, widths=(16, 16, 32, 64)),
        'resnet20': dict(depth=20, widths=(16, 16, 32, 64)),
        'resnet32': dict(depth=32, widths=(16, 16, 32, 64)),
        'resnet44': dict(depth=44, widths=(16, 16, 32, 64)),
        'resnet56': dict(depth=56, widths=(16, 16, 32, 64)),
        'resnet110': dict(depth=110, widths=(16, 16, 32, 64)),
        'resnet8x4': dict(depth=8, widths=(32, 64, 128, 256)),
        'resnet32x4': dict(depth=32, widths=(32, 64, 128, 256)),
    }

    def __init__(self, arch: Union[str, dict] = 'resnet56', out_indices: Sequence[int] = (2, ),
                 init_cfg: Optional[Union[dict, list]] = CONV_BN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        setting = self._setting(arch)
        depth, widths = setting['depth'], tuple(setting['widths'])
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f'CifarResNet depth must be 6n + 2 with n >= 1, got {depth}')
        if len(widths) != 4:
            raise ValueError(f'CifarResNet widths are (stem, stage 1, stage 2, stage 3), '
                             f'got {widths}')
        self.out_indices = check_out_indices(out_indices, num_stages=3, name='CifarResNet')
        blocks_per_stage = (depth - 2) // 6
        self.conv1 = conv3x3(3, widths[0])
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_channels = widths[0]
        for index, (width, stride) in enumerate(zip(widths[1:], (1, 2, 2))):
            blocks = [BasicBlock(in_channels, width, stride)]
            blocks += [BasicBlock(width, width) for _ in range(blocks_per_stage - 1)]
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))
            in_channels = width
        self.out_channels = widths[1:]

    def _setting(self, arch: Union[str, dict]) -> dict:
        if isinstance(arch, str):
            return preset(self.arch_settings, arch, 'CifarResNet')
        if set(arch) != {'depth', 'widths'}:
            raise KeyError(f'a CifarResNet arch dict has the keys depth and widths, got '
                           f'{sorted(arch)}')
        return arch

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> the feature maps of ``out_indices``."""
        x = self.relu(self.bn1(self.conv1(x)))
        outs = []
        for index in range(3):
            x = getattr(self, f'layer{index + 1}')(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)

