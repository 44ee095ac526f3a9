"""Writing a generated detection dataset in COCO format, staged atomically.

The generators (:mod:`vrm_det.datasets.toy_coco`,
:mod:`vrm_det.datasets.fashion_mnist_detection`) only say how to draw one
image; this module writes the images and annotation files, laid out as mmdet's
COCO configs expect::

    OUT/annotations/instances_<split>.json
    OUT/<split>/000000.png ...

The dataset is written into a temporary folder beside ``OUT`` and moved into
place at the end, so an interrupted run leaves nothing half-written.
"""
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

#: One drawn image: the (H, W, 3) uint8 BGR image and its objects, each a dict
#: with at least ``box`` ([x1, y1, x2, y2] in pixels, exclusive ends) and
#: ``label`` (0-based index into the dataset's class names), and optionally
#: ``segmentation`` (COCO polygons or RLE), written as it is.
DrawnImage = Tuple[np.ndarray, List[dict]]
#: ``progress(split, done, total)``, called after each image written.
Progress = Callable[[str, int, int], None]


def annotation_path(out_dir: str, split: str) -> str:
    """Path of the COCO annotation file of ``split`` in the dataset at ``out_dir``."""
    return osp.join(out_dir, 'annotations', f'instances_{split}.json')


def write_coco_split(out_dir: str, split: str, num_images: int,
                     draw: Callable[[], DrawnImage], classes: Sequence[str],
                     progress: Optional[Progress] = None) -> None:
    """Draw ``num_images`` images and write them as COCO split ``split``.

    Writes ``out_dir/<split>/NNNNNN.png`` (image ids 0, 1, ...) and
    ``out_dir/annotations/instances_<split>.json`` (annotation ids from 1,
    category id = label + 1, boxes as [x, y, w, h]). The folder
    ``out_dir/<split>`` must not exist yet; ``out_dir/annotations`` must.

    Args:
        out_dir (str): Dataset root.
        split (str): Split name, e.g. 'train' or 'val'.
        num_images (int): Number of images drawn, in order, by calling ``draw``.
        draw (callable): ``draw()`` returns one :data:`DrawnImage`: the
            (H, W, 3) uint8 BGR image and its objects (dicts with ``box``
            [x1, y1, x2, y2] and ``label``).
        classes (Sequence[str]): Class names, in label order.
        progress (callable, optional): Called as ``progress(split, done, total)``.
    """
    os.makedirs(osp.join(out_dir, split))
    entries, annotations = [], []
    for index in range(num_images):
        image, objects = draw()
        file_name = f'{index:06d}.png'
        cv2.imwrite(osp.join(out_dir, split, file_name), image)
        entries.append(dict(id=index, file_name=file_name, width=image.shape[1],
                            height=image.shape[0]))
        for obj in objects:
            x1, y1, x2, y2 = obj['box']
            annotation = dict(id=len(annotations) + 1, image_id=index,
                              category_id=obj['label'] + 1, bbox=[x1, y1, x2 - x1, y2 - y1],
                              area=(x2 - x1) * (y2 - y1), iscrowd=0)
            if 'segmentation' in obj:  # instance masks, for Mask R-CNN
                annotation['segmentation'] = obj['segmentation']
            annotations.append(annotation)
        if progress is not None:
            progress(split, index + 1, num_images)
    coco = dict(images=entries, annotations=annotations,
                categories=[dict(id=i + 1, name=name) for i, name in enumerate(classes)])
    with open(annotation_path(out_dir, split), 'w') as f:
        json.dump(coco, f)


def write_coco_dataset(out_dir: str, splits: Sequence[Tuple[str, int]],
                       drawer_for: Callable[[str], Callable[[], DrawnImage]],
                       classes: Sequence[str], overwrite: bool = False,
                       progress: Optional[Progress] = None, name: str = 'COCO',
                       staging_prefix: str = '.coco_',
                       prepare: Optional[Callable[[], None]] = None) -> Dict[str, str]:
    """Write a whole COCO dataset to ``out_dir`` through a staging folder.

    If ``out_dir`` exists and ``overwrite`` is false, an existing complete
    dataset (all annotation files present) is kept as it is and anything else
    raises. Otherwise ``prepare()`` is called, the splits are written in order
    into a temporary folder beside ``out_dir`` (``drawer_for(split)`` is called
    once per split, just before it is written) and that folder replaces
    ``out_dir``; the temporary folder is removed on failure.

    Args:
        out_dir (str): Destination folder.
        splits (Sequence[tuple]): ``(split, num_images)`` pairs, in writing order.
        drawer_for (callable): ``drawer_for(split)`` returns the ``draw``
            callable of :func:`write_coco_split` for that split.
        classes (Sequence[str]): Class names, in label order.
        overwrite (bool): Replace an existing ``out_dir``.
        progress (callable, optional): Called as ``progress(split, done, total)``.
        name (str): What the dataset is called in error messages.
        staging_prefix (str): Name prefix of the temporary folder.
        prepare (callable, optional): Called with no arguments once it is known
            that the dataset will be written, before anything is written.

    Returns:
        dict: Path of each split's annotation file, keyed by split.

    Raises:
        FileExistsError: ``out_dir`` exists, holds no complete dataset and
            ``overwrite`` is false.
    """
    paths = {split: annotation_path(out_dir, split) for split, _ in splits}
    if osp.isdir(out_dir) and not overwrite:
        if all(osp.isfile(p) for p in paths.values()):
            return paths
        raise FileExistsError(f'{out_dir} exists but holds no complete {name} dataset; '
                              'remove it or pass overwrite=True')
    if prepare is not None:
        prepare()
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=staging_prefix, dir=parent)
    try:
        os.makedirs(osp.join(staging, 'annotations'))
        for split, num_images in splits:
            write_coco_split(staging, split, num_images, drawer_for(split), classes,
                             progress)
        if osp.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if osp.isdir(staging):
            shutil.rmtree(staging)
    return paths
