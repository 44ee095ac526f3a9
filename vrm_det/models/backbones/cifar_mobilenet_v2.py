"""The CIFAR MobileNetV2 of the KD benchmark ("MobileNetV2" in its tables: width 0.5).

Layout (HobbitLong/RepDistiller ``models/mobilenetv2.py``, ``mobile_half``;
the same in megvii-research/mdistiller ``mdistiller/models/cifar/mobilenetv2.py``):

* stem: 3x3 convolution at stride 2 to ``int(32 w)`` channels, BN, ReLU;
* seven groups of inverted residual blocks, (expansion t, width c, blocks n,
  stride s) = (1, 16, 1, 1), (T, 24, 2, 1), (T, 32, 3, 2), (T, 64, 4, 2),
  (T, 96, 3, 1), (T, 160, 3, 2), (T, 320, 1, 1) with T = 6 and widths
  ``int(c w)``. Unlike the ImageNet MobileNetV2, every block keeps its 1x1
  expansion convolution, also at t = 1, and the 32x32 input is only
  downsampled 16 times (the second group keeps stride 1);
* a 1x1 convolution to 1280 channels (``int(1280 w)`` only for w > 1), BN, ReLU;
* average pooling of the 2x2 map (``AvgPool2d(2)`` on 32x32 inputs, the same
  as global average pooling) and one linear layer.
"""
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from vrm_det.registry import register_model

from .common import CONV_BN_INIT, check_out_indices


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1) -> nn.Sequential:
    """Convolution without bias, batch norm and ReLU: children 0 (conv) and 1 (BN)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise and linear 1x1 projection, each with batch norm.

    ``layers`` holds, in order: expansion conv, BN, ReLU, depthwise conv, BN,
    ReLU, projection conv, BN. The input is added when the block keeps both
    resolution and width.

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of the output.
        stride (int): Stride of the depthwise convolution.
        expand_ratio (int): Width of the hidden layers over ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        out = self.layers(x)
        return x + out if self.use_residual else out


@register_model
class CifarMobileNetV2(BaseModule):
    """MobileNetV2 for 32x32 inputs as the KD benchmark builds it.

    Args:
        widen_factor (float): Width multiplier w; the benchmark's
            "MobileNetV2" student uses 0.5.
        expand_ratio (int): Expansion T of all groups but the first.
        out_indices (Sequence[int]): Layers whose output is returned: 0 to 6
            are the seven groups of inverted residual blocks, 7 the last 1x1
            convolution (after its ReLU).
        init_cfg (dict | list, optional): Initialisation config.

    Feature maps on an (N, 3, 32, 32) input at w = 0.5: groups 0 and 1 at
    16x16 (8 and 12 channels), group 2 at 8x8 (16), groups 3 and 4 at 4x4 (32,
    48), groups 5 and 6 at 2x2 (80, 160), layer 7 (N, 1280, 2, 2).
    """
    # (expansion, width, blocks, stride); None marks the groups that use expand_ratio.
    group_settings = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2), (None, 64, 4, 2),
                      (None, 96, 3, 1), (None, 160, 3, 2), (None, 320, 1, 1))

    def __init__(self, widen_factor: float = 0.5, expand_ratio: int = 6,
                 out_indices: Sequence[int] = (7, ),
                 init_cfg: Optional[Union[dict, list]] = CONV_BN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_indices = check_out_indices(out_indices, num_stages=8,
                                             name='CifarMobileNetV2')
        in_channels = int(32 * widen_factor)
        self.stem = conv_bn_relu(3, in_channels, 3, stride=2)
        self.groups = nn.ModuleList()
        out_channels: List[int] = []
        for expansion, width, num_blocks, stride in self.group_settings:
            width = int(width * widen_factor)
            blocks = []
            for block_stride in [stride] + [1] * (num_blocks - 1):
                blocks.append(InvertedResidual(in_channels, width, block_stride,
                                               expand_ratio if expansion is None else expansion))
                in_channels = width
            self.groups.append(nn.Sequential(*blocks))
            out_channels.append(width)
        # The benchmark widens the last convolution with w only above 1.
        last_channels = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.last_conv = conv_bn_relu(in_channels, last_channels, 1)
        self.out_channels = tuple(out_channels) + (last_channels, )

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> the feature maps of ``out_indices``."""
        x = self.stem(x)
        outs = []
        for index, group in enumerate(self.groups):
            x = group(x)
            if index in self.out_indices:
                outs.append(x)
        if 7 in self.out_indices:
            outs.append(self.last_conv(x))
        return tuple(outs)
