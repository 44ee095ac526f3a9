"""Virtual views made by photometric RandAugment on a batch of images.

Photometric operations leave every pixel where it was, so the RoIs of the
real image are valid on the virtual one unchanged.
"""
import math
from typing import Sequence

import torch
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from vrm_det.functional.validation import check_choice
from vrm_det.registry import register_model


def _signed(magnitude: float) -> float:
    return magnitude if torch.rand(()) < 0.5 else -magnitude


# Each op maps (image (3, H, W) in [0, 1], magnitude in [0, 1]) to an image.
PHOTOMETRIC_OPS = {
    'brightness': lambda img, m: TF.adjust_brightness(img, 1 + _signed(0.9 * m)),
    'contrast': lambda img, m: TF.adjust_contrast(img, 1 + _signed(0.9 * m)),
    'color': lambda img, m: TF.adjust_saturation(img, 1 + _signed(0.9 * m)),
    'sharpness': lambda img, m: TF.adjust_sharpness(img, 1 + _signed(0.9 * m)),
    'posterize': lambda img, m: TF.posterize(
        (img * 255).round().to(torch.uint8), 8 - math.floor(4 * m)).float() / 255,
    'solarize': lambda img, m: TF.solarize(img, 1 - m),
    'autocontrast': lambda img, m: TF.autocontrast(img),
    'equalize': lambda img, m: TF.equalize((img * 255).round().to(torch.uint8)).float() / 255,
    'identity': lambda img, m: img,
}


@register_model
class PhotometricRandAugment(nn.Module):
    """RandAugment restricted to photometric operations, applied per image.

    Every image gets ``num_ops`` operations drawn uniformly from ``ops``, each
    at strength ``magnitude`` (0 to 1) with a random sign where it has one.

    Args:
        num_ops (int): Operations per image (RandAugment's n).
        magnitude (float): Strength of each operation, in [0, 1].
        ops (Sequence[str]): Names from :data:`PHOTOMETRIC_OPS`.
    """

    def __init__(self, num_ops: int = 2, magnitude: float = 0.5,
                 ops: Sequence[str] = tuple(PHOTOMETRIC_OPS)) -> None:
        super().__init__()
        if num_ops < 1:
            raise ValueError(f'num_ops={num_ops} must be at least 1')
        if not 0 <= magnitude <= 1:
            raise ValueError(f'magnitude={magnitude} must lie in [0, 1]')
        for op in ops:
            check_choice('ops entry', op, tuple(PHOTOMETRIC_OPS))
        self.num_ops, self.magnitude, self.ops = num_ops, magnitude, tuple(ops)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Augment a batch.

        Args:
            images (Tensor): Shape (N, 3, H, W), RGB values in [0, 255].

        Returns:
            Tensor: Same shape and range.
        """
        out = []
        for image in images / 255:
            image = image.clamp(0, 1)
            for index in torch.randint(len(self.ops), (self.num_ops,)).tolist():
                image = PHOTOMETRIC_OPS[self.ops[index]](image, self.magnitude)
            out.append(image)
        return torch.stack(out) * 255
