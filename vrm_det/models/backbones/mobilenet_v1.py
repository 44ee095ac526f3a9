"""MobileNetV1 for ImageNet, the student of the KD benchmark's ResNet-50 -> "MobileNet" pair.

Layout (megvii-research/mdistiller ``mdistiller/models/imagenet/mobilenetv1.py``,
which follows Howard et al., "MobileNets", 2017, Table 1, width 1.0): a 3x3
convolution at stride 2 to 32 channels, then 13 depthwise-separable blocks
(3x3 depthwise conv, BN, ReLU, 1x1 conv, BN, ReLU) with (width, stride)
(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), five times
(512, 1), (1024, 2), (1024, 1); average pooling of the 7x7 map
(``AvgPool2d(7)`` on 224x224 inputs, the same as global average pooling) and
a linear layer. In the ImageNet KD literature this network is sometimes
called "MobileNetV2".
"""
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from vrm_det.registry import register_model

from .common import CONV_BN_INIT, check_out_indices


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv, BN, ReLU, then 1x1 pointwise conv, BN, ReLU.

    Args:
        in_channels (int): Channels of the input.
        out_channels (int): Channels of the output.
        stride (int): Stride of the depthwise convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1,
                                   groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C_in, H, W) -> (N, C_out, H / stride, W / stride)."""
        x = self.relu(self.bn1(self.depthwise(x)))
        return self.relu(self.bn2(self.pointwise(x)))


@register_model
class MobileNetV1(BaseModule):
    """MobileNetV1 (width 1.0) in four stages, cut where the resolution halves.

    Args:
        out_indices (Sequence[int]): Stages whose output is returned, 0 to 3.
        init_cfg (dict | list, optional): Initialisation config.

    Feature maps on an (N, 3, 224, 224) input: stage 0 (N, 128, 56, 56),
    stage 1 (N, 256, 28, 28), stage 2 (N, 512, 14, 14), stage 3
    (N, 1024, 7, 7).
    """
    # (width, stride) of the depthwise-separable blocks of each stage.
    stage_settings = (((64, 1), (128, 2), (128, 1)),
                      ((256, 2), (256, 1)),
                      ((512, 2), ) + ((512, 1), ) * 5,
                      ((1024, 2), (1024, 1)))

    def __init__(self, out_indices: Sequence[int] = (3, ),
                 init_cfg: Optional[Union[dict, list]] = CONV_BN_INIT) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_indices = check_out_indices(out_indices, num_stages=4, name='MobileNetV1')
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(32), nn.ReLU(inplace=True))
        in_channels = 32
        self.stages = nn.ModuleList()
        out_channels: List[int] = []
        for setting in self.stage_settings:
            blocks = []
            for width, stride in setting:
                blocks.append(DepthwiseSeparable(in_channels, width, stride))
                in_channels = width
            self.stages.append(nn.Sequential(*blocks))
            out_channels.append(in_channels)
        self.out_channels = tuple(out_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(N, 3, H, W) -> the feature maps of ``out_indices``."""
        x = self.stem(x)
        outs = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.out_indices:
                outs.append(x)
        return tuple(outs)
