"""The photometric virtual view: each operation against its definition, value
range, per-image independence and seeding."""
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from vrm_det.models.virtual_views import photometric
from vrm_det.models.virtual_views.photometric import PHOTOMETRIC_OPS, PhotometricRandAugment

GRAY = np.array([0.2989, 0.587, 0.114])  # ITU-R 601 luma, as torchvision's grayscale


def random_image(seed=0, size=(3, 12, 10)):
    """A float image in [0, 1] on the 8-bit grid (as decoded images are), its
    values in [40, 200] so that autocontrast and equalize have work to do."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(40, 201, size, generator=g).float() / 255


def sharpness_reference(img, factor):
    """PIL's sharpness: blend with a 3x3 smoothing (centre weight 5, sum 13),
    border pixels kept."""
    smooth = img.copy()
    kernel = np.ones((3, 3))
    kernel[1, 1] = 5
    kernel /= kernel.sum()
    h, w = img.shape[1:]
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            smooth[:, y, x] = (img[:, y - 1:y + 2, x - 1:x + 2] * kernel).sum((1, 2))
    return np.clip(factor * img + (1 - factor) * smooth, 0, 1)


def reference(op, img, magnitude, sign):
    """The op's definition in numpy float64, for an image (3, H, W) in [0, 1]."""
    factor = 1 + sign * 0.9 * magnitude
    gray = np.tensordot(GRAY, img, axes=1)
    if op == 'brightness':
        return np.clip(factor * img, 0, 1)
    if op == 'contrast':
        return np.clip(factor * img + (1 - factor) * gray.mean(), 0, 1)
    if op == 'color':
        return np.clip(factor * img + (1 - factor) * gray[None], 0, 1)
    if op == 'sharpness':
        return sharpness_reference(img, factor)
    if op == 'posterize':
        bits = 8 - math.floor(4 * magnitude)
        mask = 256 - 2**(8 - bits)
        return (np.round(img * 255).astype(np.uint8) & mask) / 255
    if op == 'solarize':
        return np.where(img >= 1 - magnitude, 1 - img, img)
    if op == 'autocontrast':
        lo, hi = img.min((1, 2), keepdims=True), img.max((1, 2), keepdims=True)
        return (img - lo) / (hi - lo)
    if op == 'equalize':
        pil = Image.fromarray(np.round(img * 255).astype(np.uint8).transpose(1, 2, 0))
        return np.asarray(ImageOps.equalize(pil)).transpose(2, 0, 1) / 255
    if op == 'identity':
        return img
    raise KeyError(op)


@pytest.mark.parametrize('sign', [1, -1])
@pytest.mark.parametrize('op', sorted(PHOTOMETRIC_OPS))
def test_each_op_matches_its_definition(op, sign, monkeypatch):
    monkeypatch.setattr(photometric, '_signed', lambda magnitude: sign * magnitude)
    img = random_image(seed=1, size=(3, 24, 20))
    got = PHOTOMETRIC_OPS[op](img, 0.5)
    want = reference(op, img.double().numpy(), 0.5, sign)
    np.testing.assert_allclose(got.double().numpy(), want, atol=1.5 / 255 if op == 'equalize'
                               else 1e-5)
    if op != 'identity':
        assert not torch.allclose(got, img, atol=1 / 255), f'{op} left the image unchanged'


@pytest.mark.parametrize('op', sorted(PHOTOMETRIC_OPS))
def test_ops_keep_values_in_range(op):
    extremes = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8), random_image(2, (3, 8, 8))])
    augment = PhotometricRandAugment(num_ops=3, magnitude=1.0, ops=(op,))
    for _ in range(5):
        out = augment(extremes * 255)
        assert out.shape == extremes.shape
        assert out.min() >= 0 and out.max() <= 255 and torch.isfinite(out).all()


def test_each_image_draws_its_own_ops_from_its_own_pixels():
    torch.manual_seed(0)
    same = random_image(3, (3, 16, 16)).expand(8, -1, -1, -1) * 255
    out = PhotometricRandAugment(num_ops=2)(same)
    distinct = {tuple(o.flatten()[:64].tolist()) for o in out}
    assert len(distinct) > 1, 'every image of the batch got the same augmentation'
    # No batch statistics: an image's view does not depend on the others' pixels.
    a, b, c = (random_image(seed, (3, 16, 16)) * 255 for seed in (4, 5, 6))
    torch.manual_seed(7)
    first = PhotometricRandAugment(num_ops=2)(torch.stack([a, b]))
    torch.manual_seed(7)
    second = PhotometricRandAugment(num_ops=2)(torch.stack([a, c]))
    torch.testing.assert_close(first[0], second[0], rtol=0, atol=0)


def test_same_seed_same_view_other_seed_differs():
    images = torch.stack([random_image(s, (3, 16, 16)) for s in range(4)]) * 255
    augment = PhotometricRandAugment(num_ops=2)
    views = []
    for seed in (11, 11, 12):
        torch.manual_seed(seed)
        views.append(augment(images))
    torch.testing.assert_close(views[0], views[1], rtol=0, atol=0)
    assert not torch.equal(views[0], views[2])


def test_bad_options_are_named():
    with pytest.raises(ValueError, match='num_ops=0'):
        PhotometricRandAugment(num_ops=0)
    with pytest.raises(ValueError, match='magnitude=1.5'):
        PhotometricRandAugment(magnitude=1.5)
    with pytest.raises(ValueError, match="'rotate'"):
        PhotometricRandAugment(ops=('rotate',))
