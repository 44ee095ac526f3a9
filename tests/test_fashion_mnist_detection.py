"""The Fashion-MNIST detection set: canvases of item images with COCO boxes.

The items here are solid rectangles of known size (written as gzipped IDX files
in the released format), so the canvases can be checked independently: every
box must hug the pixels painted in its item's colour, keep the source's shape,
and carry the source's label."""
import json
import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_fashion_mnist_demo import write_idx

from vrm_det.datasets.fashion_mnist_detection import (
    FASHION_MNIST_CLASSES,
    compose_canvas,
    load_fashion_mnist_split,
    make_fashion_mnist_detection,
)

ROOT = Path(__file__).parents[1]
CONFIGS = ROOT / 'configs' / 'toy' / 'fashion_mnist_det'
TOOL = ROOT / 'tools' / 'make_fashion_mnist_detection.py'
TEACHER = CONFIGS / 'faster-rcnn_r18-w32_fpn_fmnist-det.py'
FMNIST_CONFIGS = sorted(CONFIGS.glob('*.py'))


def rectangles(rng, count):
    """``count`` 28x28 items, each a solid rectangle; their (w, h) and labels."""
    images = np.zeros((count, 28, 28), np.uint8)
    sizes = rng.integers(6, 27, (count, 2))
    for image, (w, h) in zip(images, sizes):
        x, y = rng.integers(0, 28 - w + 1), rng.integers(0, 28 - h + 1)
        image[y:y + h, x:x + w] = 255
    return images, sizes, rng.permutation(np.arange(count) % 10)


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """A gzipped release (64 training, 32 test items) and the arrays written."""
    folder = tmp_path_factory.mktemp('fashion_release')
    rng = np.random.default_rng(0)
    arrays = {}
    for split, idx_name, count in (('train', 'train', 64), ('val', 't10k', 32)):
        images, sizes, labels = rectangles(rng, count)
        write_idx(folder / f'{idx_name}-images-idx3-ubyte.gz', images, compress=True)
        write_idx(folder / f'{idx_name}-labels-idx1-ubyte.gz', labels, compress=True)
        arrays[split] = (images, sizes, labels)
    return folder, arrays


@pytest.fixture(scope='module')
def dataset(release, tmp_path_factory):
    folder, _ = release
    tmp = tmp_path_factory.mktemp('fmnist_det')
    root = tmp / 'fashion_mnist'
    paths = make_fashion_mnist_detection(str(tmp / 'det'), str(root), num_train=6, num_val=3,
                                         seed=4, sources=[str(folder)])
    return tmp / 'det', root, paths


def tight_box(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


def test_reads_the_released_idx_files(release, dataset):
    _, arrays = release
    _, root, _ = dataset
    for split in ('train', 'val'):
        images, labels = load_fashion_mnist_split(str(root), split)
        assert np.array_equal(images, arrays[split][0])
        assert np.array_equal(labels, arrays[split][2])


def test_boxes_hug_the_painted_items_and_carry_their_labels(release):
    _, arrays = release
    images, sizes, labels = arrays['train']
    rng = np.random.default_rng(1)
    seen = 0
    for _ in range(8):
        canvas, objects = compose_canvas(rng, images, labels)
        assert canvas.shape == (128, 128, 3) and canvas.dtype == np.uint8
        assert 2 <= len(objects) <= 5
        for k, obj in enumerate(objects):
            assert obj['label'] == labels[obj['index']]
            assert obj['box'] == tight_box(obj['mask'])
            x1, y1, x2, y2 = obj['box']
            # The item's colour: the commonest colour of its pixels (the solid
            # inside of the rectangle); where it shows near the box, it is the
            # item's, and it reaches (within the anti-aliased rim) every side.
            colours, counts = np.unique(canvas[obj['mask']], axis=0, return_counts=True)
            painted = np.all(canvas == colours[counts.argmax()], -1)
            near = np.zeros_like(painted)
            near[max(0, y1 - 3):y2 + 3, max(0, x1 - 3):x2 + 3] = True
            painted &= near
            assert not (painted & ~obj['mask']).any()
            px1, py1, px2, py2 = tight_box(painted)
            assert 0 <= px1 - x1 <= 2 and 0 <= py1 - y1 <= 2
            assert 0 <= x2 - px2 <= 2 and 0 <= y2 - py2 <= 2
            # Not covered by a later item: the box has the source rectangle's shape.
            box = np.zeros_like(painted)
            box[y1:y2, x1:x2] = True
            if not any((later['mask'] & box).any() for later in objects[k + 1:]):
                w, h = sizes[obj['index']]
                assert obj['mask'][y1:y2, x1:x2].mean() > 0.85  # all but rounded corners
                assert abs((x2 - x1) * h - (y2 - y1) * w) <= 2 * (w + h)
                seen += 1
    assert seen >= 16


def test_coco_files_hold_the_composed_canvases(release, dataset):
    from pycocotools.coco import COCO
    _, arrays = release
    out, root, paths = dataset
    rng = np.random.default_rng(4)  # the generator's seed: the same canvases again
    for split, count in (('train', 6), ('val', 3)):
        images, _, labels = arrays[split]
        coco = COCO(paths[split])
        assert [coco.cats[i + 1]['name'] for i in range(10)] == list(FASHION_MNIST_CLASSES)
        assert sorted(coco.imgs) == list(range(count))
        for image_id in range(count):
            canvas, objects = compose_canvas(rng, images, labels)
            info = coco.imgs[image_id]
            assert (info['width'], info['height']) == (128, 128)
            assert np.array_equal(cv2.imread(str(out / split / info['file_name'])), canvas)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
            expected = []
            for obj in objects:
                x1, y1, x2, y2 = obj['box']
                expected.append((labels[obj['index']] + 1, [x1, y1, x2 - x1, y2 - y1],
                                 (x2 - x1) * (y2 - y1), 0))
            assert [(a['category_id'], a['bbox'], a['area'], a['iscrowd'])
                    for a in anns] == expected


def test_mmdet_reads_every_instance_through_the_configs_pipeline(dataset):
    from mmdet.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    out, _, paths = dataset
    cfg = Config.fromfile(str(TEACHER))
    init_default_scope('mmdet')
    for split, loader in (('train', cfg.train_dataloader), ('val', cfg.val_dataloader)):
        coco = json.load(open(paths[split]))
        loader.dataset.data_root = str(out) + '/'
        mmdet_set = DATASETS.build(loader.dataset)
        assert len(mmdet_set) == len(coco['images'])
        assert mmdet_set.metainfo['classes'] == FASHION_MNIST_CLASSES
        for index in range(len(mmdet_set)):
            sample = mmdet_set[index]['data_samples']
            anns = [a for a in coco['annotations'] if a['image_id'] == sample.img_id]
            assert len(sample.gt_instances) == len(anns) >= 2
            assert sorted(sample.gt_instances.labels.tolist()) == sorted(
                a['category_id'] - 1 for a in anns)


def test_the_tool_repeats_a_seed_and_missing_data_says_how_to_get_it(dataset, tmp_path,
                                                                     monkeypatch):
    out, root, _ = dataset
    again = tmp_path / 'again'
    monkeypatch.setattr(sys, 'argv', [str(TOOL), '--out', str(again), '--fashion-mnist',
                                      str(root), '--num-train', '6', '--num-val', '3',
                                      '--seed', '4'])
    runpy.run_path(str(TOOL), run_name='__main__')
    for split in ('train', 'val'):
        name = f'annotations/instances_{split}.json'
        assert (again / name).read_bytes() == (out / name).read_bytes()
    assert (again / 'val' / '000002.png').read_bytes() == (out / 'val' / '000002.png').read_bytes()
    with pytest.raises(FileNotFoundError, match='apt-get install dataset-fashion-mnist'):
        make_fashion_mnist_detection(str(tmp_path / 'det'), str(tmp_path / 'none'),
                                     sources=[str(tmp_path / 'empty')])
    assert not (tmp_path / 'det').exists()


def test_configs_build_with_ten_classes_on_the_set():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from vrm_det.registry import MMDET_MODELS
    assert [p.name for p in FMNIST_CONFIGS] == [
        'augment-control_faster-rcnn_r18-w8_fpn_fmnist-det.py',
        'faster-rcnn_r18-w32_fpn_fmnist-det.py', 'faster-rcnn_r18-w8_fpn_fmnist-det.py',
        'vrm_faster-rcnn_r18-w32-w8_fpn_fmnist-det.py']
    for path in FMNIST_CONFIGS:
        cfg = Config.fromfile(str(path))
        for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
            assert loader.dataset.data_root == 'data/fashion_mnist_det/'
            assert loader.dataset.metainfo['classes'] == FASHION_MNIST_CLASSES
        assert cfg.val_evaluator.ann_file == 'data/fashion_mnist_det/annotations/instances_val.json'
        model = cfg.model.get('student', cfg.model)
        assert model.roi_head.bbox_head.num_classes == 10
        if 'teacher' in cfg.model:
            assert Path(cfg.model.teacher) == TEACHER
            assert cfg.model.teacher_ckpt == f'work_dirs/{TEACHER.stem}/iter_600.pth'
    init_default_scope('mmdet')
    teacher = MMDET_MODELS.build(Config.fromfile(str(TEACHER)).model)
    assert teacher.roi_head.bbox_head.num_classes == 10
    assert teacher.roi_head.bbox_head.fc_cls.out_features == 11
