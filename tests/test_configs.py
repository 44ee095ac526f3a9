"""Every shipped config parses and builds through the registry (no weights needed)."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vrm_det.models.distillers.base_distiller import _teacher_model_config
from vrm_det.models.losses import DistillLoss
from vrm_det.registry import MMDET_MODELS

CONFIGS = Path(__file__).parents[1] / 'configs'
# Detection configs (mmdet's registry); the classification ones (mmpretrain's)
# are built in test_classification_configs.py and test_fashion_mnist_demo.py.
CLASSIFICATION = ('classification', 'fashion_mnist')
ALL = sorted(p for p in CONFIGS.rglob('*.py')
             if '_base_' not in p.parts and not set(CLASSIFICATION) & set(p.parts))
COCO_PAIRS = ['r101-r18', 'r101-r50', 'r50-mobilenetv2']
# Distillers whose teacher checkpoint the build replaces by a random one.
DISTILLERS = ('TwoStageDistiller', 'CascadeDistiller', 'OneStageDistiller')
# The COCO configs of the other two-stage detectors.
OTHER_DETECTORS = ['mask_rcnn/vrm_mask-rcnn_r101-r50_fpn_1x_coco.py',
                   'cascade_rcnn/vrm_cascade-rcnn_r101-r50_fpn_1x_coco.py']


def config_id(path):
    return str(path.relative_to(CONFIGS))


@pytest.fixture(scope='module')
def random_teacher_ckpts(tmp_path_factory):
    """One randomly initialised checkpoint per teacher config, made on demand."""
    cache = {}

    def get(teacher):
        key = str(teacher)
        if key not in cache:
            model = MMDET_MODELS.build(_teacher_model_config(teacher))
            path = tmp_path_factory.mktemp('teacher') / 'teacher.pth'
            torch.save({'state_dict': model.state_dict()}, path)
            cache[key] = str(path)
        return cache[key]
    return get


def test_the_coco_matrix_is_complete():
    names = {config_id(p) for p in ALL}
    for pair in COCO_PAIRS:
        for method in ('vrm', 'kd', 'dkd', 'dist'):
            assert f'{method}/{method}_faster-rcnn_{pair}_fpn_1x_coco.py' in names
    for student in ('r18', 'r50', 'mobilenetv2'):
        assert f'students/faster-rcnn_{student}_fpn_1x_coco.py' in names
    assert set(OTHER_DETECTORS) <= names


@pytest.mark.parametrize('path', ALL, ids=config_id)
def test_config_builds(path, random_teacher_ckpts):
    cfg = Config.fromfile(str(path))
    assert 'vrm_det' in cfg.custom_imports['imports']
    init_default_scope('mmdet')
    if cfg.model.type in DISTILLERS:
        cfg.model.teacher_ckpt = random_teacher_ckpts(cfg.model.teacher)
    model = MMDET_MODELS.build(cfg.model)
    if cfg.model.type in DISTILLERS:
        assert isinstance(model.distill_loss, DistillLoss)
        method = path.name.split('_')[0]
        expected = dict(vrm='VRMLoss', kd='KDLoss', dkd='DKDLoss', dist='DISTLoss',
                        **{'augment-control': 'KDLoss', 'control-vrm': 'VRMLoss'})[method]
        assert type(model.distill_loss).__name__ == expected


@pytest.mark.parametrize('pair', COCO_PAIRS)
@pytest.mark.parametrize('method', ['kd', 'dkd', 'dist'])
def test_baseline_configs_differ_from_vrm_only_in_the_loss(pair, method):
    vrm = Config.fromfile(str(CONFIGS / 'vrm' / f'vrm_faster-rcnn_{pair}_fpn_1x_coco.py'))
    other = Config.fromfile(
        str(CONFIGS / method / f'{method}_faster-rcnn_{pair}_fpn_1x_coco.py'))
    vrm_model, other_model = vrm.model.to_dict(), other.model.to_dict()
    vrm_model.pop('distill_loss')
    other_model.pop('distill_loss')
    assert vrm_model == other_model


@pytest.mark.parametrize('pair', COCO_PAIRS)
def test_dkd_configs_use_dkd_authors_detection_setting(pair):
    """megvii-research/mdistiller, detection/model/config.py: alpha 1, beta 0.25,
    T 1 (not the CIFAR setting, beta 8)."""
    cfg = Config.fromfile(str(CONFIGS / 'dkd' / f'dkd_faster-rcnn_{pair}_fpn_1x_coco.py'))
    loss = cfg.model.distill_loss
    assert (loss.alpha, loss.beta, loss.temperature) == (1.0, 0.25, 1.0)


@pytest.mark.parametrize('pair', COCO_PAIRS)
def test_kd_and_dist_configs_use_published_detection_settings(pair):
    """KD: Chen et al., NeurIPS 2017, Sec. 3.1 (T = 1, soft and hard losses
    weighted equally). DIST: hunto/DIST_KD, segmentation/losses/dist_kd.py
    (beta = gamma = 1, no temperature, weight 1)."""
    kd = Config.fromfile(str(CONFIGS / 'kd' / f'kd_faster-rcnn_{pair}_fpn_1x_coco.py'))
    assert (kd.model.distill_loss.temperature, kd.model.distill_loss.loss_weight) == (1.0, 1.0)
    dist = Config.fromfile(str(CONFIGS / 'dist' / f'dist_faster-rcnn_{pair}_fpn_1x_coco.py'))
    loss = dist.model.distill_loss
    assert (loss.inter_weight, loss.intra_weight, loss.temperature, loss.loss_weight) == (
        1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize('method', ['kd', 'dkd', 'dist'])
def test_toy_baseline_configs_differ_from_toy_vrm_only_in_the_loss(method):
    vrm = Config.fromfile(str(CONFIGS / 'toy' / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py'))
    other = Config.fromfile(str(CONFIGS / 'toy' / f'{method}_faster-rcnn_r18-w32-w8_fpn_toy.py'))
    coco = Config.fromfile(str(CONFIGS / method / f'{method}_faster-rcnn_r101-r18_fpn_1x_coco.py'))
    assert other.model.distill_loss == coco.model.distill_loss
    vrm_cfg, other_cfg = vrm.to_dict(), other.to_dict()
    vrm_cfg['model'].pop('distill_loss')
    other_cfg['model'].pop('distill_loss')
    for cfg in (vrm_cfg, other_cfg):
        for key in ('kd_loss', 'dkd_loss', 'dist_loss'):
            cfg.pop(key, None)
    assert vrm_cfg == other_cfg
