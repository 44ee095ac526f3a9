"""The generated toy dataset: deterministic, well-formed, written atomically."""
import filecmp
import json

import cv2
import pytest

from vrm_det.datasets import TOY_CLASSES, make_toy_coco


def test_same_seed_same_files_and_other_seed_differs(tmp_path):
    a = make_toy_coco(str(tmp_path / 'a'), num_train=6, num_val=3, seed=5)
    b = make_toy_coco(str(tmp_path / 'b'), num_train=6, num_val=3, seed=5)
    c = make_toy_coco(str(tmp_path / 'c'), num_train=6, num_val=3, seed=6)
    assert filecmp.cmp(a['train'], b['train'], shallow=False)
    assert filecmp.cmp(tmp_path / 'a/train/000004.png', tmp_path / 'b/train/000004.png',
                       shallow=False)
    assert not filecmp.cmp(a['train'], c['train'], shallow=False)


def test_annotations_are_valid_coco_with_boxes_inside_images(tmp_path):
    paths = make_toy_coco(str(tmp_path / 'toy'), num_train=20, num_val=5, image_size=96, seed=1)
    coco = json.load(open(paths['train']))
    assert [c['name'] for c in coco['categories']] == list(TOY_CLASSES)
    assert len(coco['images']) == 20 and len(coco['annotations']) >= 20
    seen_classes = {a['category_id'] for a in coco['annotations']}
    assert len(seen_classes) >= 4
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 96 and w > 2 and h > 2
        assert ann['area'] == w * h
    image = cv2.imread(str(tmp_path / 'toy' / 'train' / coco['images'][0]['file_name']))
    assert image.shape == (96, 96, 3)


def test_existing_dataset_is_reused_and_a_partial_one_refused(tmp_path):
    root = tmp_path / 'toy'
    make_toy_coco(str(root), num_train=2, num_val=1)
    stamp = (root / 'annotations' / 'instances_train.json').stat().st_mtime_ns
    make_toy_coco(str(root), num_train=2, num_val=1)
    assert (root / 'annotations' / 'instances_train.json').stat().st_mtime_ns == stamp
    (root / 'annotations' / 'instances_val.json').unlink()
    with pytest.raises(FileExistsError, match='no complete toy dataset'):
        make_toy_coco(str(root), num_train=2, num_val=1)
    make_toy_coco(str(root), num_train=2, num_val=1, overwrite=True)
    assert (root / 'annotations' / 'instances_val.json').is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.toy_coco_')]


def test_a_class_subset_makes_a_single_class_dataset(tmp_path):
    paths = make_toy_coco(str(tmp_path / 'one'), num_train=12, num_val=3, seed=2,
                          classes=('disc',))
    coco = json.load(open(paths['train']))
    assert coco['categories'] == [dict(id=1, name='disc')]
    assert coco['annotations'] and {a['category_id'] for a in coco['annotations']} == {1}
    with pytest.raises(ValueError, match="classes=\\['hexagon'\\]"):
        make_toy_coco(str(tmp_path / 'bad'), classes=('hexagon',))
