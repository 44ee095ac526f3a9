"""Shared fixtures: a small toy COCO dataset and a briefly trained toy teacher."""
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

import vrm_det  # noqa: F401
from vrm_det.apis import isolate_run, set_data_root, set_iterations
from vrm_det.datasets import make_toy_coco

CONFIGS = Path(__file__).parents[1] / 'configs'
TOY_TEACHER = CONFIGS / 'toy' / 'faster-rcnn_r18-w32_fpn_toy.py'
TOY_STUDENT = CONFIGS / 'toy' / 'faster-rcnn_r18-w8_fpn_toy.py'
TOY_VRM = CONFIGS / 'toy' / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py'
TOY_KD = CONFIGS / 'toy' / 'kd_faster-rcnn_r18-w32-w8_fpn_toy.py'


def toy_config(path, data_root, work_dir, max_iters=2, teacher_ckpt=None) -> Config:
    """A toy config on ``data_root``, ``max_iters`` long, batch 2, writing to ``work_dir``."""
    cfg = Config.fromfile(str(path))
    set_data_root(cfg, str(data_root))
    set_iterations(cfg, max_iters)
    cfg.train_dataloader.batch_size = 2
    cfg.work_dir = str(work_dir)
    isolate_run(cfg, osp.basename(str(work_dir)))
    cfg.default_hooks.logger.interval = 1
    if teacher_ckpt is not None:
        cfg.model.teacher_ckpt = str(teacher_ckpt)
    return cfg


@pytest.fixture(scope='session')
def toy_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy') / 'toy_coco'
    make_toy_coco(str(root), num_train=16, num_val=8, seed=3)
    return root


@pytest.fixture(scope='session')
def toy_teacher_ckpt(toy_data, tmp_path_factory):
    """A checkpoint written by an mmengine runner after a few teacher iterations."""
    work_dir = tmp_path_factory.mktemp('teacher')
    runner = Runner.from_cfg(toy_config(TOY_TEACHER, toy_data, work_dir, max_iters=3))
    runner.train()
    path = osp.join(work_dir, 'iter_3.pth')
    assert osp.isfile(path)
    return path
