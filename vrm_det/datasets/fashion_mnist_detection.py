"""A COCO-format detection dataset of real item images: Fashion-MNIST.

Each canvas holds 2 to 5 Fashion-MNIST items (training-split items on the
training canvases, test-split items on the validation canvases), each resized,
tinted with a random colour that keeps its grey-level detail, and pasted over a
textured, noisy background with stray strokes. An item's pixels are those of its
resized image at or above :data:`ITEM_THRESHOLD`; its box is the tight box of the
pixels still visible on the canvas, its category the item's Fashion-MNIST label.
Items overlap only a little (box IoU at most :data:`MAX_IOU`, and each keeps at
least :data:`MIN_VISIBLE` of its pixels).

The output is deterministic for a seed and laid out as the toy set
(:mod:`vrm_det.datasets.toy_coco`) and mmdet's COCO configs expect::

    OUT/annotations/instances_train.json
    OUT/annotations/instances_val.json
    OUT/train/000000.png ...
    OUT/val/000000.png ...

It is written into a temporary folder beside ``OUT`` and moved into place at
the end, so an interrupted run leaves nothing half-written.
"""
import os.path as osp
from functools import partial
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .coco_writer import write_coco_dataset
from .fashion_mnist import DEBIAN_FASHION_MNIST, prepare_fashion_mnist
from .toy_coco import box_iou

#: Fashion-MNIST's class names, in label order (category id = label + 1).
FASHION_MNIST_CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
#: Grey level (0-255, after resizing) from which a pixel belongs to the item.
ITEM_THRESHOLD = 16
#: Largest IoU between an item's box and any earlier item's box.
MAX_IOU = 0.25
#: Smallest fraction of an earlier item's visible pixels that must stay visible.
MIN_VISIBLE = 0.7
#: IDX files of each split: (images, labels).
SPLIT_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
               'val': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}


def read_idx(path: str) -> np.ndarray:
    """An unsigned-byte IDX file (the Fashion-MNIST release format) as an array."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 4 or data[:3] != b'\x00\x00\x08':
        raise ValueError(f'{path} is not an unsigned-byte IDX file')
    ndim = data[3]
    shape = tuple(int(v) for v in np.frombuffer(data, '>u4', ndim, offset=4))
    array = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f'{path}: {array.size} bytes for shape {shape}')
    return array.reshape(shape)


def load_fashion_mnist_split(root: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """The (N, 28, 28) images and (N,) labels of ``split`` ('train' or 'val',
    the latter being the release's test split) from the uncompressed IDX files
    in ``root``."""
    images, labels = (read_idx(osp.join(root, name)) for name in SPLIT_FILES[split])
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f'{root}: {split} images {images.shape} do not match '
                         f'labels {labels.shape}')
    return images, labels


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = rng.uniform(30, 225, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[:size, :size]
    period = float(rng.uniform(4, 12))
    angle = float(rng.uniform(0, np.pi))
    waves = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    image += (float(rng.uniform(0, 25)) * waves)[..., None].astype(np.float32)
    image += rng.normal(0, float(rng.uniform(6, 18)), image.shape).astype(np.float32)
    for _ in range(int(rng.integers(2, 7))):  # stray strokes of no class
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p1, p2 = (tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(2))
        cv2.line(image, p1, p2, colour, int(rng.integers(1, 3)))
    return image


def _tight_box(mask: np.ndarray) -> List[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def _tint(rng: np.random.Generator, shade: np.ndarray, under: np.ndarray) -> np.ndarray:
    """A colour for an item, drawn until the tinted item stands out from what it covers."""
    best, best_contrast = None, -1.0
    for _ in range(4):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        contrast = float(np.abs(colour * shade.mean() - under.mean(0)).mean())
        if contrast > best_contrast:
            best, best_contrast = colour, contrast
        if contrast >= 60:
            break
    return best


def compose_canvas(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray,
                   image_size: int = 128, num_items: Tuple[int, int] = (2, 5),
                   item_size: Tuple[int, int] = (24, 56)):
    """One canvas of Fashion-MNIST items.

    Args:
        rng: Source of randomness.
        images (np.ndarray): (N, h, w) uint8 item images.
        labels (np.ndarray): (N,) their labels.
        image_size (int): Side of the square canvas.
        num_items (tuple): Least and most items drawn (inclusive).
        item_size (tuple): Least and most side of a resized item (inclusive).

    Returns:
        tuple: The (size, size, 3) uint8 canvas and the objects in the order
        pasted (a later one may cover part of an earlier one), each a dict
        with ``box`` ([x1, y1, x2, y2], exclusive ends), ``label``, ``index``
        (of the item in ``images``) and ``mask`` (the canvas-sized boolean
        mask of its visible pixels).
    """
    canvas = _background(rng, image_size)
    owner = np.full((image_size, image_size), -1, np.int64)  # which item shows at a pixel
    placed = []
    for _ in range(int(rng.integers(num_items[0], num_items[1] + 1))):
        index = int(rng.integers(len(images)))
        for _attempt in range(30):
            side = int(rng.integers(item_size[0], min(item_size[1], image_size) + 1))
            grey = cv2.resize(images[index], (side, side), interpolation=cv2.INTER_LINEAR)
            item = grey >= ITEM_THRESHOLD
            if not item.any():
                continue
            x, y = (int(v) for v in rng.integers(0, image_size - side + 1, 2))
            region = np.zeros_like(owner, bool)
            region[y:y + side, x:x + side] = item
            box = _tight_box(region)
            covered = owner[region]
            if all(box_iou(box, p['box']) <= MAX_IOU
                   and (owner == k).sum() - (covered == k).sum() >= MIN_VISIBLE * p['pixels']
                   for k, p in enumerate(placed)):
                break
        else:
            continue
        shade = 0.35 + 0.65 * grey[item].astype(np.float32)[:, None] / 255
        colour = _tint(rng, shade, canvas[region])
        canvas[region] = colour * shade
        owner[region] = len(placed)
        placed.append(dict(box=box, label=int(labels[index]), index=index,
                           pixels=int(item.sum())))
    objects = []
    for k, p in enumerate(placed):
        mask = owner == k
        objects.append(dict(box=_tight_box(mask), label=p['label'], index=p['index'],
                            mask=mask))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), objects


def make_fashion_mnist_detection(out_dir: str, fashion_mnist_root: str = 'data/fashion_mnist',
                                 num_train: int = 240, num_val: int = 60,
                                 image_size: int = 128, seed: int = 0,
                                 overwrite: bool = False, progress=None,
                                 num_items: Tuple[int, int] = (2, 5),
                                 item_size: Tuple[int, int] = (24, 56),
                                 sources: Sequence[str] = (DEBIAN_FASHION_MNIST,)
                                 ) -> Dict[str, str]:
    """Write the Fashion-MNIST detection dataset to ``out_dir``.

    Args:
        out_dir (str): Destination folder.
        fashion_mnist_root (str): Folder of the four uncompressed Fashion-MNIST
            IDX files; filled from ``sources`` by
            :func:`~vrm_det.datasets.prepare_fashion_mnist` when they are missing.
        num_train (int): Number of training canvases (items of the training split).
        num_val (int): Number of validation canvases (items of the test split).
        image_size (int): Side of the square canvases, in pixels.
        seed (int): Seed: the same seed (and source files) gives the same files.
        overwrite (bool): Replace an existing ``out_dir``; otherwise an
            existing complete dataset is kept as it is.
        progress (callable, optional): Called as ``progress(split, done, total)``.
        num_items (tuple): Least and most items per canvas.
        item_size (tuple): Least and most side of a resized item, in pixels.
        sources (Sequence[str]): Where to look for the released files when
            ``fashion_mnist_root`` lacks them (Debian's package by default).

    Returns:
        dict: Paths of the train and val annotation files.

    Raises:
        FileNotFoundError: The Fashion-MNIST files are nowhere to be found; the
            message says how to get them.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError('num_train and num_val must be at least 1')
    if not 1 <= num_items[0] <= num_items[1]:
        raise ValueError(f'num_items={tuple(num_items)}: need 1 <= least <= most')
    if not 8 <= item_size[0] <= item_size[1] <= image_size:
        raise ValueError(f'item_size={tuple(item_size)}: need 8 <= least <= most <= '
                         f'image_size ({image_size})')
    compose = dict(image_size=image_size, num_items=tuple(num_items),
                   item_size=tuple(item_size))
    rng = np.random.default_rng(seed)

    def canvas_drawer(split: str):
        """``draw()`` for ``split``: one canvas of that split's items per call."""
        images, labels = load_fashion_mnist_split(fashion_mnist_root, split)
        return partial(compose_canvas, rng, images, labels, **compose)

    return write_coco_dataset(
        out_dir, (('train', num_train), ('val', num_val)), canvas_drawer,
        FASHION_MNIST_CLASSES, overwrite=overwrite, progress=progress,
        name='Fashion-MNIST detection', staging_prefix='.fashion_mnist_det_',
        prepare=partial(prepare_fashion_mnist, fashion_mnist_root, sources))
