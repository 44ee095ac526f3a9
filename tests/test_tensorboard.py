"""TensorBoard is one config line away: with mmengine's ``TensorboardVisBackend``
added to the visualizer, ``DistillStatsHook``'s per-iteration ``distill/``
scalars land in the event file, step for step and value for value the same as
in the local backend's ``vis_data/scalars.json``."""
import glob
import json
import os.path as osp

import pytest
from conftest import TOY_VRM, toy_config
from mmengine.runner import Runner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ITERS = 3
KEYS = ('distill/kept_fraction', 'distill/unit_edge_share_sample', 'distill/distill_grad_norm')


def _one(pattern):
    found = glob.glob(pattern, recursive=True)
    assert len(found) == 1, (pattern, found)
    return found[0]


def _json_series(path):
    """``{key: {step: value}}`` of a LocalVisBackend scalars.json, read line by line."""
    series = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                step = record.pop('step')
                for key, value in record.items():
                    series.setdefault(key, {})[step] = value
    return series


def test_distill_scalars_reach_tensorboard(toy_data, toy_teacher_ckpt, tmp_path):
    cfg = toy_config(TOY_VRM, toy_data, tmp_path, max_iters=ITERS, teacher_ckpt=toy_teacher_ckpt)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend'),
                                   dict(type='TensorboardVisBackend')]
    Runner.from_cfg(cfg).train()

    events = EventAccumulator(_one(osp.join(str(tmp_path), '**', 'events.out.tfevents.*')))
    events.Reload()
    local = _json_series(_one(osp.join(str(tmp_path), '*', 'vis_data', 'scalars.json')))

    tags = set(events.Tags()['scalars'])
    missing = [key for key in KEYS if key not in tags]
    assert not missing, f'{missing} not in the event file (tags: {sorted(tags)})'
    for key in KEYS:
        board = {e.step: e.value for e in events.Scalars(key)}
        assert sorted(board) == list(range(1, ITERS + 1)), (key, board)
        assert sorted(local.get(key, {})) == sorted(board), (key, local.get(key))
        for step, value in board.items():
            # TensorBoard stores float32.
            assert value == pytest.approx(local[key][step], rel=1e-6, abs=1e-6), (key, step)
