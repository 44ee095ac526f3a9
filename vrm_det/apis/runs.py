"""One training run as the demo and the seed comparison make it: a config
pointed at a dataset and a seed, trained by an mmengine runner, evaluated once
at the end with the config's COCO metric."""
import glob
import json
import os
import os.path as osp
import time
from contextlib import redirect_stdout
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.runner import Runner

from .runner_config import isolate_run, set_data_root, set_iterations

#: Short name -> the evaluator's key, for detection (mmdet's CocoMetric, a
#: fraction) and classification (mmpretrain's Accuracy, in percent).
DETECTION_METRICS = {'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50',
                     'AP75': 'coco/bbox_mAP_75', 'APs': 'coco/bbox_mAP_s',
                     'APm': 'coco/bbox_mAP_m', 'APl': 'coco/bbox_mAP_l'}
CLASSIFICATION_METRICS = {'top1': 'accuracy/top1', 'top5': 'accuracy/top5'}


def run_config(path: str, seed: int, data_root: str, work_dir: str,
               max_iters: Optional[int], label: str, progress_position: int = 0,
               options: Optional[dict] = None) -> Config:
    """A config as the demo and the seed comparison train it: on ``data_root``,
    with ``seed``, quiet console, a progress bar (on terminal line
    ``progress_position``), evaluated once at the end.

    ``options`` (dotted keys into dicts the config has, e.g.
    ``{'model.distill_loss.edge_floor': 0}``) are merged first, so the data
    root, the schedule and the seed set here still hold.
    """
    cfg = Config.fromfile(path)
    for key in options or {}:
        _check_leaf(cfg, key, path)
    cfg.merge_from_dict(options or {})
    set_data_root(cfg, data_root)
    if max_iters is not None:
        set_iterations(cfg, max_iters)
    cfg.work_dir = work_dir
    isolate_run(cfg, label)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'  # the bar and the stage lines are the console output
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1  # evaluated once, below
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ProgressBarHook', desc=label, position=progress_position)]
    return cfg


def _check_leaf(cfg: Config, key: str, path: str) -> None:
    """Raise unless every part of the dotted ``key`` but the last names a dict
    ``cfg`` holds: a misspelled path would otherwise add keys nothing reads.
    A new last part is allowed (a model option the file leaves at its
    default); the registries check those names when the model is built."""
    node = cfg.to_dict()
    parts = key.split('.')
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            raise KeyError(f"option {key!r}: {path} has no {'.'.join(parts[:depth + 1])!r} "
                           f"(keys there: {', '.join(sorted(node))})")
        node = node[part]


def _metrics(raw: dict) -> Dict[str, float]:
    """The evaluator's metrics under short names, every one a fraction."""
    if any(key in raw for key in CLASSIFICATION_METRICS.values()):
        return {name: float(raw[key]) / 100 for name, key in CLASSIFICATION_METRICS.items()
                if key in raw}
    if not raw:  # CocoMetric reports nothing when the model detected nothing
        return {name: 0.0 for name in DETECTION_METRICS}
    return {name: float(raw[key]) for name, key in DETECTION_METRICS.items() if key in raw}


def train_and_evaluate(cfg: Config) -> Tuple[str, Dict[str, float], float]:
    """Train with the runner, evaluate on the val split; checkpoint, metrics
    (fractions: AP for detection, top-1 accuracy for classification), seconds.

    The runner's and pycocotools' console output goes to ``console.log`` in
    the work dir; the progress bar (stderr) stays on the terminal.
    """
    start = time.perf_counter()
    os.makedirs(cfg.work_dir, exist_ok=True)
    with open(osp.join(cfg.work_dir, 'console.log'), 'a') as log, redirect_stdout(log):
        runner = Runner.from_cfg(cfg)
        runner.train()
        metrics = _metrics(runner.val())
    seconds = time.perf_counter() - start
    checkpoint = osp.join(cfg.work_dir, f'iter_{runner.iter}.pth')
    with open(osp.join(cfg.work_dir, 'demo_metrics.json'), 'w') as f:
        json.dump(dict(checkpoint=checkpoint, metrics=metrics, seconds=seconds), f)
    return checkpoint, metrics, seconds


def read_scalars(work_dir: str) -> Dict[str, List[Tuple[int, float]]]:
    """The (step, value) series of the newest run's ``vis_data/scalars.json``."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    series: Dict[str, List[Tuple[int, float]]] = {}
    if not files:
        return series
    with open(files[-1]) as f:
        for line in f:
            record = json.loads(line)
            step = record.pop('step', None)
            for key, value in record.items():
                if isinstance(value, (int, float)):
                    series.setdefault(key, []).append((step, float(value)))
    return series
