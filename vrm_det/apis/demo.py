"""The demo: a teacher, then one student trained alone, with KD and with VRM.

Every stage is an mmengine runner built from a config, as ``tools/train.py``
builds it; the demo only chains them, evaluates each model with its COCO
metric and writes a report with figures.
"""
import glob
import json
import os
import os.path as osp
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.runner import Runner

from vrm_det.apis.runner_config import isolate_run, set_data_root, set_iterations
from vrm_det.datasets import make_toy_coco

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                      'configs', 'toy')
METRIC_KEYS = {'AP': 'coco/bbox_mAP', 'AP50': 'coco/bbox_mAP_50', 'AP75': 'coco/bbox_mAP_75',
               'APs': 'coco/bbox_mAP_s', 'APm': 'coco/bbox_mAP_m', 'APl': 'coco/bbox_mAP_l'}


@dataclass
class DemoSettings:
    """What the demo trains, on which data, for how long, and where it writes."""
    work_dir: str = 'work_dirs/demo'
    data_root: Optional[str] = None  # None: make the toy dataset at data/toy_coco
    teacher_config: str = osp.join(CONFIG_DIR, 'faster-rcnn_r18-w32_fpn_toy.py')
    student_config: str = osp.join(CONFIG_DIR, 'faster-rcnn_r18-w8_fpn_toy.py')
    kd_config: str = osp.join(CONFIG_DIR, 'kd_faster-rcnn_r18-w32-w8_fpn_toy.py')
    vrm_config: str = osp.join(CONFIG_DIR, 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py')
    teacher_iters: Optional[int] = None  # None: the config's schedule
    student_iters: Optional[int] = None
    retrain_teacher: bool = False
    seed: int = 0


def _stage(index: int, total: int, text: str) -> None:
    print(f'\n[demo {index}/{total}] {text}', flush=True)


def run_config(path: str, seed: int, data_root: str, work_dir: str,
               max_iters: Optional[int], label: str) -> Config:
    """A config as the demo and the seed comparison train it: on ``data_root``,
    with ``seed``, quiet console, a progress bar, evaluated once at the end."""
    cfg = Config.fromfile(path)
    set_data_root(cfg, data_root)
    if max_iters is not None:
        set_iterations(cfg, max_iters)
    cfg.work_dir = work_dir
    isolate_run(cfg, label)
    cfg.randomness = dict(seed=seed)
    cfg.log_level = 'WARNING'  # the bar and the stage lines are the console output
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1  # evaluated once, below
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
        dict(type='ProgressBarHook', desc=label)]
    return cfg


def _metrics(raw: dict) -> Dict[str, float]:
    if not raw:  # CocoMetric reports nothing when the model detected nothing
        return {name: 0.0 for name in METRIC_KEYS}
    return {name: float(raw[key]) for name, key in METRIC_KEYS.items() if key in raw}


def train_and_evaluate(cfg: Config) -> Tuple[str, Dict[str, float], float]:
    """Train with the runner, evaluate on the val split; checkpoint, metrics, seconds.

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


def comparison_table(results: Dict[str, Dict[str, float]]) -> str:
    """Markdown table of AP, AP50, AP75 (in %) per method."""
    lines = ['| model | AP | AP50 | AP75 |', '| --- | ---: | ---: | ---: |']
    for name, metrics in results.items():
        lines.append(f"| {name} | {100 * metrics['AP']:.1f} | {100 * metrics['AP50']:.1f} | "
                     f"{100 * metrics['AP75']:.1f} |")
    return '\n'.join(lines)


def run_demo(settings: DemoSettings) -> Dict[str, Dict[str, float]]:
    """Run every stage; returns the metrics per model and writes the report."""
    total = 6
    start = time.perf_counter()
    os.makedirs(settings.work_dir, exist_ok=True)

    _stage(1, total, 'dataset')
    if settings.data_root is None:
        data_root = 'data/toy_coco'
        existed = osp.isdir(data_root)
        make_toy_coco(data_root, seed=settings.seed)
        print(f"toy COCO dataset {'reused' if existed else 'written'} at {data_root}")
    else:
        data_root = settings.data_root
        print(f'using the COCO-format dataset at {data_root}')

    results, seconds = {}, {}
    teacher_dir = osp.join(settings.work_dir, 'teacher')
    teacher_record = osp.join(teacher_dir, 'demo_metrics.json')
    _stage(2, total, f'teacher ({osp.basename(settings.teacher_config)})')
    if osp.isfile(teacher_record) and not settings.retrain_teacher:
        with open(teacher_record) as f:
            record = json.load(f)
        teacher_ckpt, results['teacher'] = record['checkpoint'], record['metrics']
        seconds['teacher'] = 0.0
        print(f'reusing the teacher trained before: {teacher_ckpt} '
              '(pass --retrain-teacher to train it again)')
    else:
        cfg = run_config(settings.teacher_config, settings.seed, data_root, teacher_dir,
                         settings.teacher_iters, 'teacher')
        teacher_ckpt, results['teacher'], seconds['teacher'] = train_and_evaluate(cfg)
    print(f"teacher AP {100 * results['teacher']['AP']:.1f}")

    runs = [('student alone', settings.student_config, 'student'),
            ('student + KD', settings.kd_config, 'kd'),
            ('student + VRM', settings.vrm_config, 'vrm')]
    trained = {}
    for index, (name, path, key) in enumerate(runs, 3):
        _stage(index, total, f'{name} ({osp.basename(path)})')
        cfg = run_config(path, settings.seed, data_root, osp.join(settings.work_dir, key),
                         settings.student_iters, key)
        if cfg.model.type != 'TwoStageDistiller' and key != 'student':
            raise ValueError(f'{path} is not a distiller config')
        if 'teacher_ckpt' in cfg.model:
            cfg.model.teacher_ckpt = teacher_ckpt
        checkpoint, results[name], seconds[name] = train_and_evaluate(cfg)
        trained[key] = (cfg, checkpoint)
        print(f"{name} AP {100 * results[name]['AP']:.1f}")

    _stage(6, total, 'report')
    report = write_report(settings, results, seconds, trained['vrm'],
                          time.perf_counter() - start)
    print('\n' + comparison_table(results))
    print(f'\nreport: {report}')
    return results


def write_report(settings: DemoSettings, results, seconds, vrm_run, wall_s: float) -> str:
    """Write ``report.md`` and its figures into the demo's work dir."""
    from vrm_det.visualization import plot_ap_bars, plot_curves, plot_distiller_relations

    out = settings.work_dir
    figures = {}
    figures['ap'] = osp.join(out, 'ap.png')
    plot_ap_bars(results, figures['ap'])

    scalars = {key: read_scalars(osp.join(out, key)) for key in ('student', 'kd', 'vrm')}
    names = {'student': 'student alone', 'kd': 'student + KD', 'vrm': 'student + VRM'}
    figures['loss'] = osp.join(out, 'loss_curves.png')
    plot_curves({names[k]: s.get('loss_cls', []) for k, s in scalars.items()}, figures['loss'],
                'RoI classification loss', 'student detection loss (logger window means)')
    figures['kept'] = osp.join(out, 'kept_fraction.png')
    plot_curves({'VRM': scalars['vrm'].get('distill/kept_fraction', [])}, figures['kept'],
                'kept inter-sample edges', 'fraction of edges kept after pruning, per iteration',
                ylim=(0, 1.02))
    figures['entropy'] = osp.join(out, 'joint_entropy.png')
    plot_curves({'VRM': scalars['vrm'].get('distill/joint_entropy', [])}, figures['entropy'],
                'mean joint entropy (nats)', "student's joint entropy of the edges, per iteration")
    figures['relations'] = osp.join(out, 'relations.png')
    graph = plot_distiller_relations(*vrm_run, figures['relations'])

    lines = [
        '# vrm_det demo report', '',
        'A teacher and one student architecture trained alone, with KD on RoI logits and '
        'with VRM; every model evaluated with mmdet\'s CocoMetric on the val split. '
        f'Seed {settings.seed}; the numbers are whatever this run gave.', '',
        comparison_table(results), '',
        '| stage | seconds |', '| --- | ---: |',
        *[f'| {name} | {value:.0f}{" (reused)" if value == 0 else ""} |'
          for name, value in seconds.items()],
        f'| whole demo | {wall_s:.0f} |', '',
        '## AP per model', '', '![AP](ap.png)', '',
        '## Training loss', '', '![loss curves](loss_curves.png)', '',
        '## Kept-edge fraction', '',
        'Edges whose joint entropy lies above the percentile are pruned, so the kept fraction '
        'sits at the percentile (more only where entropies tie); which edges are kept changes '
        "every step with the student's predictions, whose uncertainty the mean joint entropy "
        'below follows.', '',
        '![kept fraction](kept_fraction.png)', '', '![joint entropy](joint_entropy.png)', '',
        '## Relation graphs of one batch', '',
        f"Teacher and VRM student, {graph['vertices_drawn']} RoI vertices drawn; "
        f"{100 * graph['kept_fraction']:.1f}% of the batch's edges kept.", '',
        '![relation graphs](relations.png)', '',
    ]
    path = osp.join(out, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
