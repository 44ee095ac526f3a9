"""The CIFAR VGGs with batch norm of the KD benchmark (VGG8, 11, 13, 16, 19).

Layout (HobbitLong/RepDistiller ``models/vgg.py``, the same in
megvii-research/mdistiller ``mdistiller/models/cifar/vgg.py``, the ``*_bn``
variants): five stages of 3x3 convolutions (with bias) each followed by batch
norm and ReLU; 2x2 max pooling after each of the first three stages only, so
on 32x32 inputs the last two stages run at 4x4; global average pooling and a
single linear layer from 512 features. There are no hidden fully connected
layers. (The benchmark adds a fourth max pooling for 64x64 inputs, which is
not built here.)
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from vrm_det.registry import register_model

from .common import CONV_BN_INIT, check_out_indices, preset


def conv_bn_relu_stage(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """3x3 conv, batch norm and ReLU for each width: children ``3i`` (conv) and ``3i + 1`` (BN)."""
    layers: List[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers)


@register_model
class CifarVGG(BaseModule):
    """VGG with batch norm for 32x32 inputs.

    Args:
        arch (str | list): A preset name (``'vgg8'``, ``'vgg11'``,
            ``'vgg13'``, ``'vgg16'``, ``'vgg19'``) or the convolution widths of
            each of the five stages.
        out_indices (Sequence[int]): Stages whose output (after ReLU) is
            returned, 0 to 4.
        init_cfg (dict | list, optional): Initialisation config.

    Feature maps on an (N, 3, 32, 32) input: stage 0 (N, 64, 32, 32), stage 1
    (N, 128, 16, 16), stage 2 (N, 256, 8, 8), stages 3 and 4 (N, 512, 4, 4).
    """
    arch_settings: Dict[str, Tuple[Tuple[int, ...], ...]] = {
        'vgg8': ((64, ), (128, ), (256, ), (512, ), (512, )),
        'vgg11': ((64, ), (128, ), (256, 256), (512, 512), (512, 512)),
        'vgg13': ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
        'vgg16': ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
        'vgg19': ((64, 64), (128, 128), (256, ) * 4, (512, ) * 4, (512, ) * 4),
    }
    # Stages followed by 2x2 max pooling on 32x32 inputs.
    pooled_stages = (0, 1, 2)

    def __init__(self, arch: Union[str, Sequence[Sequence[int]]] = 'vgg13',
                 out_indices: Sequence[int] = (4, ),
                 init_cfg: Optional[Union[dict, list]] = CONV_BN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            arch = preset(self.arch_settings, arch, 'CifarVGG')
        if len(arch) != 5 or not all(arch):
            raise ValueError(f'CifarVGG needs the widths of five non-empty stages, got {arch}')
        self.out_indices = check_out_indices(out_indices, num_stages=5, name='CifarVGG')
        in_channels = 3
        self.stages = nn.ModuleList()
        for widths in arch:
            self.stages.append(conv_bn_relu_stage(in_channels, widths))
            in_channels = widths[-1]
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.out_channels = tuple(widths[-1] for widths in arch)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> the feature maps of ``out_indices``."""
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
            if index in self.pooled_stages:
                x = self.pool(x)
        return tuple(outs)
