"""What a data preprocessor did to the images, and how to redo it for another.

The distiller receives the batch as the student's data preprocessor made it
(channel order, mean and std, padding). The teacher may have been trained
with other settings (caffe-style weights: BGR, another mean and std); it must
see the same pixels normalised its own way. Images are taken to be loaded in
BGR order, mmcv's default; ``bgr_to_rgb`` (mmdet, mmengine) or ``to_rgb``
(mmpretrain) turns them to RGB.
"""
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ImageNormalisation(NamedTuple):
    """The per-pixel settings of a data preprocessor."""
    mean: Optional[Tensor]  #: (C, 1, 1) or None without normalisation
    std: Optional[Tensor]  #: (C, 1, 1) or None
    to_rgb: bool  #: channels reversed from the loaded (BGR) order
    pad_value: float  #: value of the padding, after normalisation
    pad_size_divisor: int  #: canvas sides are padded to multiples of this

    @classmethod
    def of(cls, preprocessor: nn.Module) -> 'ImageNormalisation':
        enabled = getattr(preprocessor, '_enable_normalize', False)
        to_rgb = getattr(preprocessor, '_channel_conversion', None)
        if to_rgb is None:
            to_rgb = getattr(preprocessor, 'to_rgb', False)
        return cls(getattr(preprocessor, 'mean', None) if enabled else None,
                   getattr(preprocessor, 'std', None) if enabled else None,
                   bool(to_rgb), float(getattr(preprocessor, 'pad_value', 0)),
                   int(getattr(preprocessor, 'pad_size_divisor', 1)))

    def same_pixels_as(self, other: 'ImageNormalisation') -> bool:
        """Whether a batch normalised by ``other`` is normalised as ``self`` wants."""
        def same(a, b):
            if a is None or b is None:
                return a is None and b is None
            return a.shape == b.shape and torch.equal(a.cpu(), b.cpu())
        return (same(self.mean, other.mean) and same(self.std, other.std)
                and self.to_rgb == other.to_rgb and self.pad_value == other.pad_value)

    def describe(self) -> str:
        def values(t):
            return 'none' if t is None else '(' + ', '.join(f'{v:g}' for v in t.flatten()) + ')'
        return (f'mean {values(self.mean)}, std {values(self.std)}, '
                f'{"RGB" if self.to_rgb else "BGR"}, pad value {self.pad_value:g}')

    def to_loaded(self, inputs: Tensor) -> Tensor:
        """Undo the normalisation: pixel values in the loaded (BGR) order."""
        if self.mean is not None:
            inputs = inputs * self.std + self.mean
        return inputs.flip(1) if self.to_rgb else inputs

    def from_loaded(self, pixels: Tensor) -> Tensor:
        """Normalise pixels given in the loaded (BGR) order."""
        if self.to_rgb:
            pixels = pixels.flip(1)
        return pixels if self.mean is None else (pixels - self.mean) / self.std


def pad_to_divisor(inputs: Tensor, divisor: int, value: float) -> Tensor:
    """Pad the canvas on the right and bottom to multiples of ``divisor``."""
    height, width = inputs.shape[-2:]
    pad_h, pad_w = (-height) % divisor, (-width) % divisor
    if pad_h or pad_w:
        inputs = F.pad(inputs, (0, pad_w, 0, pad_h), value=value)
    return inputs


def renormalise(inputs: Tensor, source: ImageNormalisation, target: ImageNormalisation,
                image_sizes: Optional[Sequence[Tuple[int, int]]] = None) -> Tensor:
    """A batch normalised by ``source`` as ``target`` would have normalised it.

    The padding outside each image's valid region becomes ``target``'s pad
    value, and the canvas is padded on the right and bottom to ``target``'s
    divisor; no pixel moves, so boxes and RoIs stay valid. Always a new
    tensor: the caller's batch may be saved for the student's backward pass.
    When ``target.same_pixels_as(source)``, :func:`pad_to_divisor` alone does.

    Args:
        inputs (Tensor): Shape (N, C, H, W).
        source (ImageNormalisation): How ``inputs`` were made.
        target (ImageNormalisation): How the consumer expects them.
        image_sizes (Sequence[tuple], optional): ``(height, width)`` of each
            image's valid region; None when the whole canvas is image.
    """
    inputs = target.from_loaded(source.to_loaded(inputs)).clone()
    for index, (height, width) in enumerate(image_sizes or ()):
        inputs[index, :, height:, :] = target.pad_value
        inputs[index, :, :, width:] = target.pad_value
    return pad_to_divisor(inputs, target.pad_size_divisor, target.pad_value)
