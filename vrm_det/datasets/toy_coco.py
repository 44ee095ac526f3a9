"""A small COCO-format detection dataset of generated images.

Objects of several shape classes, with varied size, colour and texture, are
drawn on cluttered backgrounds (smooth noise, stray strokes and blobs); every
annotation has its box and its instance mask (``segmentation``, RLE). The
output is deterministic for a seed and laid out as mmdet expects COCO::

    OUT/annotations/instances_train.json
    OUT/annotations/instances_val.json
    OUT/train/000000.png ...
    OUT/val/000000.png ...

The dataset is written into a temporary folder beside ``OUT`` and moved into
place at the end, so an interrupted run leaves nothing half-written.
"""
from functools import partial
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from .coco_writer import write_coco_dataset

TOY_CLASSES = ('square', 'disc', 'triangle', 'ring', 'cross')
TEXTURES = ('solid', 'stripes', 'checker', 'noise')


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.uniform(40, 200, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 12, image.shape).astype(np.float32)
    for _ in range(rng.integers(3, 9)):  # clutter: strokes and blobs of no class
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        if rng.random() < 0.6:
            p2 = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(image, p1, p2, colour, int(rng.integers(1, 3)))
        else:
            axes = tuple(int(v) for v in rng.integers(2, size // 12 + 3, 2))
            cv2.ellipse(image, p1, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    return image


def _shape_mask(label: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) boolean mask of one object filling most of its square."""
    mask = np.zeros((size, size), np.uint8)
    s = size - 1
    if label == 'square':
        m = int(rng.integers(0, max(1, size // 6)))
        cv2.rectangle(mask, (m, 0), (s - m, s), 1, -1)
    elif label == 'disc':
        cv2.circle(mask, (size // 2, size // 2), size // 2, 1, -1)
    elif label == 'triangle':
        apex = int(rng.integers(0, size))
        cv2.fillPoly(mask, [np.array([[apex, 0], [0, s], [s, s]], np.int32)], 1)
    elif label == 'ring':
        cv2.circle(mask, (size // 2, size // 2), size // 2, 1, -1)
        cv2.circle(mask, (size // 2, size // 2), max(1, size // 4), 0, -1)
    elif label == 'cross':
        t = max(2, size // 4)
        cv2.rectangle(mask, (size // 2 - t // 2, 0), (size // 2 + t // 2, s), 1, -1)
        cv2.rectangle(mask, (0, size // 2 - t // 2), (s, size // 2 + t // 2), 1, -1)
    return mask.astype(bool)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(0, 255, 3)
    other = 255 - base
    kind = TEXTURES[rng.integers(len(TEXTURES))]
    yy, xx = np.mgrid[:size, :size]
    if kind == 'solid':
        pattern = np.zeros((size, size), bool)
    elif kind == 'stripes':
        period = int(rng.integers(3, 7))
        pattern = ((xx + yy) // period) % 2 == 0
    elif kind == 'checker':
        period = int(rng.integers(3, 7))
        pattern = ((xx // period) + (yy // period)) % 2 == 0
    else:
        pattern = rng.random((size, size)) < 0.3
    return np.where(pattern[..., None], other, base).astype(np.float32)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two non-empty boxes [x1, y1, x2, y2]."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _draw_image(rng: np.random.Generator, size: int,
                classes: Sequence[str]) -> Tuple[np.ndarray, List[dict]]:
    """One (size, size, 3) uint8 BGR image of at most 4 objects, and the objects:
    dicts with ``box`` ([x1, y1, x2, y2], exclusive ends, tight around the
    shape), ``label`` (index into ``classes``) and ``segmentation`` (the
    object's visible pixels, as COCO's compressed RLE: a shape drawn later
    covers the earlier ones where they overlap; the box stays the whole shape's)."""
    image = _background(rng, size)
    objects, masks = [], []
    for _ in range(int(rng.integers(1, 5))):
        for _attempt in range(20):
            side = int(rng.integers(size // 8, size // 2.5))
            x, y = (int(v) for v in rng.integers(0, size - side, 2))
            box = [x, y, x + side, y + side]
            if all(box_iou(box, other['box']) < 0.2 for other in objects):
                break
        else:
            continue
        label = int(rng.integers(len(classes)))
        mask = _shape_mask(classes[label], side, rng)
        region = image[y:y + side, x:x + side]
        region[mask] = _texture(rng, side)[mask]
        ys, xs = np.nonzero(mask)
        tight = [x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1,
                 y + int(ys.max()) + 1]
        objects.append(dict(box=tight, label=label))
        canvas = np.zeros((size, size), bool)
        canvas[y:y + side, x:x + side] = mask
        masks.append(canvas)
    for index, obj in enumerate(objects):
        visible = masks[index] & ~np.any(masks[index + 1:], axis=0)
        obj['segmentation'] = _rle(visible)
    return np.clip(image, 0, 255).astype(np.uint8), objects


def _rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of an (H, W) boolean mask, JSON-ready (``counts`` a
    string). RLE rather than polygons: a ring has a hole, which COCO's
    polygons cannot express."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii'))


def make_toy_coco(out_dir: str, num_train: int = 240, num_val: int = 60,
                  image_size: int = 128, seed: int = 0, overwrite: bool = False,
                  progress=None, classes: Sequence[str] = TOY_CLASSES) -> Dict[str, str]:
    """Write the toy dataset to ``out_dir``.

    Args:
        out_dir (str): Destination folder.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        image_size (int): Side of the square images, in pixels.
        seed (int): Seed: the same seed gives the same files.
        overwrite (bool): Replace an existing ``out_dir``; otherwise an
            existing complete dataset is kept as it is.
        progress (callable, optional): Called as ``progress(split, done, total)``.
        classes (Sequence[str]): The shape classes drawn, from
            :data:`TOY_CLASSES` (one of them makes a single-class dataset).

    Returns:
        dict: Paths of the train and val annotation files.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be at least 1')
    unknown = [name for name in classes if name not in TOY_CLASSES]
    if unknown or not classes:
        raise ValueError(f'classes={list(classes)}: choose one or more of {list(TOY_CLASSES)}')
    if image_size < 32:
        raise ValueError(f'image_size={image_size} is too small; use at least 32')
    classes = tuple(classes)
    rng = np.random.default_rng(seed)
    return write_coco_dataset(
        out_dir, (('train', num_train), ('val', num_val)),
        lambda split: partial(_draw_image, rng, image_size, classes), classes,
        overwrite=overwrite, progress=progress, name='toy', staging_prefix='.toy_coco_')
