"""The wide ResNets WRN-d-w of the KD benchmark (WRN-40-2, WRN-16-2, WRN-40-1, WRN-16-1).

Layout (HobbitLong/RepDistiller ``models/wrn.py``, the same in
megvii-research/mdistiller ``mdistiller/models/cifar/wrn.py``): a 3x3 stem
convolution to 16 channels without batch norm, three stages of
``(d - 4) / 6`` pre-activation blocks of widths 16w, 32w, 64w at strides
1, 2, 2, then batch norm and ReLU before the classifier averages the 8x8 map
(``avg_pool2d(8)`` on 32x32 inputs, the same as global average pooling).

A block whose width changes pre-activates its input once and feeds it to both
the residual branch and the 1x1 shortcut convolution; a block that keeps its
width adds its raw input.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from vrm_det.registry import register_model

from .common import CONV_BN_INIT, check_out_indices, preset


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with a residual connection.

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of the output.
        stride (int): Stride of the first convolution and of the shortcut.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        elif stride != 1:
            raise ValueError('a width-preserving block has no shortcut convolution, so '
                             'it cannot downsample')

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        activated = self.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        identity = x if self.shortcut is None else self.shortcut(activated)
        return out + identity


@register_model
class CifarWideResNet(BaseModule):
    """Wide ResNet WRN-d-w for 32x32 inputs.

    Args:
        arch (str | dict): A preset name (``'wrn_40_2'``, ``'wrn_16_2'``,
            ``'wrn_40_1'``, ``'wrn_16_1'``) or a dict with ``depth``
            (``6n + 4``) and ``widen_factor`` (w).
        out_indices (Sequence[int]): Stages whose output is returned, 0 to 2.
            The last stage is returned after the final batch norm and ReLU,
            earlier stages as they leave their last block.
        init_cfg (dict | list, optional): Initialisation config.

    Feature maps on an (N, 3, 32, 32) input: stage 0 (N, 16w, 32, 32), stage 1
    (N, 32w, 16, 16), stage 2 (N, 64w, 8, 8).
    """
    arch_settings: Dict[str, dict] = {
        'wrn_40_2': dict(depth=40, widen_factor=2),
        'wrn_16_2': dict(depth=16, widen_factor=2),
        'wrn_40_1': dict(depth=40, widen_factor=1),
        'wrn_16_1': dict(depth=16, widen_factor=1),
    }

    def __init__(self, arch: Union[str, dict] = 'wrn_40_2', out_indices: Sequence[int] = (2, ),
                 init_cfg: Optional[Union[dict, list]] = CONV_BN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            arch = preset(self.arch_settings, arch, 'CifarWideResNet')
        if set(arch) != {'depth', 'widen_factor'}:
            raise KeyError('a CifarWideResNet arch dict has the keys depth and widen_factor, '
                           f'got {sorted(arch)}')
        depth, widen = arch['depth'], arch['widen_factor']
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f'CifarWideResNet depth must be 6n + 4 with n >= 1, got {depth}')
        self.out_indices = check_out_indices(out_indices, num_stages=3, name='CifarWideResNet')
        blocks_per_stage = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        in_channels = 16
        for index, (width, stride) in enumerate(zip(widths, (1, 2, 2))):
            blocks = [PreActBlock(in_channels, width, stride)]
            blocks += [PreActBlock(width, width) for _ in range(blocks_per_stage - 1)]
            self.add_module(f'layer{index + 1}', nn.Sequential(*blocks))
            in_channels = width
        self.final_norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = widths

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> the feature maps of ``out_indices``."""
        x = self.conv1(x)
        outs = []
        for index in range(3):
            x = getattr(self, f'layer{index + 1}')(x)
            if index == 2:
                x = self.relu(self.final_norm(x))
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
