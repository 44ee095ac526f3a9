"""The demo: a teacher, then one student architecture trained several ways over
several seeds — alone, with the virtual view and no teacher (the control),
with VRM, and with the control's losses plus VRM (KD, DKD and DIST on
request) — compared as mean ± std.

Every run is an mmengine runner built from a config, as ``tools/train.py``
builds it; the demo chains them, evaluates each model with its COCO metric
and writes a report with figures.
"""
import os
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

from vrm_det.datasets import make_toy_coco

from .runs import run_config
from .seed_comparison import (
    ComparisonSettings,
    first_seed_scalars,
    metric_by_arm,
    numbered_stages,
    results_section,
    summary_table,
    teacher_then_arms,
)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                      'configs', 'toy')

#: The arms' labels, in the report's order; the first is the reference.
ALONE, CONTROL, KD, VRM, CONTROL_VRM, DKD, DIST = (
    'student alone', 'student + virtual view (control)', 'student + KD', 'student + VRM',
    'control + VRM', 'student + DKD', 'student + DIST')


def _toy(name: str) -> str:
    return osp.join(CONFIG_DIR, name)


VIEW_DESCRIPTIONS = {
    'photometric': 'RandAugment with photometric operations, made in the model; RoIs unmoved',
    'geometric': 'RandAugment with photometric and geometric operations, made by the data '
                 'pipeline; the RoIs projected into the virtual image',
}
#: The configs of the arms that see the virtual view, per kind of view: the
#: control always sees the view of the VRM arms it controls.
VIEW_CONFIGS = {
    'photometric': dict(
        control_config=_toy('augment-control_faster-rcnn_r18-w8_fpn_toy.py'),
        vrm_config=_toy('vrm_faster-rcnn_r18-w32-w8_fpn_toy.py'),
        control_vrm_config=_toy('control-vrm_faster-rcnn_r18-w32-w8_fpn_toy.py')),
    'geometric': dict(
        control_config=_toy('geometric/augment-control_faster-rcnn_r18-w8_fpn_toy-geometric.py'),
        vrm_config=_toy('geometric/vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py'),
        control_vrm_config=_toy(
            'geometric/control-vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py')),
}


@dataclass
class DemoSettings(ComparisonSettings):
    """What the demo trains, on which data, for how long, and where it writes."""
    work_dir: str = 'work_dirs/demo'
    data_root: Optional[str] = None  # None: make the toy dataset at data/toy_coco
    teacher_config: str = _toy('faster-rcnn_r18-w32_fpn_toy.py')
    student_config: str = _toy('faster-rcnn_r18-w8_fpn_toy.py')
    #: The virtual view of the control and VRM arms: 'photometric' (made in the
    #: model) or 'geometric' (made by the pipeline, RoIs projected into it).
    view: str = 'photometric'
    control_config: Optional[str] = None  # None: the view's (VIEW_CONFIGS)
    kd_config: str = _toy('kd_faster-rcnn_r18-w32-w8_fpn_toy.py')
    vrm_config: Optional[str] = None
    control_vrm_config: Optional[str] = None
    dkd_config: str = _toy('dkd_faster-rcnn_r18-w32-w8_fpn_toy.py')
    dist_config: str = _toy('dist_faster-rcnn_r18-w32-w8_fpn_toy.py')
    all_baselines: bool = False  # also KD, DKD and DIST

    def __post_init__(self):
        if self.view not in VIEW_CONFIGS:
            raise ValueError(f'view={self.view!r}: choose one of {sorted(VIEW_CONFIGS)}')
        for key, path in VIEW_CONFIGS[self.view].items():
            if getattr(self, key) is None:
                setattr(self, key, path)

    def arms(self) -> Dict[str, str]:
        """Arm label -> config, the reference (student alone) first."""
        arms = {ALONE: self.student_config, CONTROL: self.control_config,
                VRM: self.vrm_config, CONTROL_VRM: self.control_vrm_config}
        if self.all_baselines:  # left out by default: make demo stays under 30 minutes
            arms.update({KD: self.kd_config, DKD: self.dkd_config, DIST: self.dist_config})
        return arms


def run_demo(settings: DemoSettings) -> dict:
    """Run every stage and write the report.

    Returns:
        dict: ``teacher`` (its metrics), ``records`` (one per student run, see
        :func:`~vrm_det.apis.seed_comparison.compare_over_seeds`) and
        ``report`` (the report's path).
    """
    start = time.perf_counter()
    os.makedirs(settings.work_dir, exist_ok=True)
    stage = numbered_stages('demo', 4)

    stage('dataset')
    if settings.data_root is None:
        data_root = 'data/toy_coco'
        existed = osp.isdir(data_root)
        make_toy_coco(data_root, seed=0)
        print(f"toy COCO dataset {'reused' if existed else 'written'} at {data_root}")
    else:
        data_root = settings.data_root
        print(f'using the COCO-format dataset at {data_root}')

    run = teacher_then_arms(settings, data_root, settings.arms(), 'AP', stage)
    records, teacher_metrics = run['records'], run['teacher_metrics']

    stage('report')
    wall_s = time.perf_counter() - start
    report = write_report(settings, data_root, run['teacher_ckpt'], teacher_metrics,
                          run['teacher_seconds'], records, run['jobs'], wall_s)
    print('\n' + summary_table(records, ALONE))
    print(f'\nteacher AP {100 * teacher_metrics["AP"]:.1f}; whole demo {wall_s / 60:.1f} min')
    print(f'report: {report}')
    return dict(teacher=teacher_metrics, records=records, report=report)


def write_report(settings: DemoSettings, data_root: str, teacher_ckpt: str, teacher_metrics,
                 teacher_seconds: float, records: List[dict], jobs: int, wall_s: float) -> str:
    """Write ``report.md`` and its figures into the demo's work dir."""
    from vrm_det.visualization import plot_curves, plot_distiller_relations, plot_metric_spread

    out = settings.work_dir
    plot_metric_spread(metric_by_arm(records), osp.join(out, 'ap.png'),
                       teacher_value=100 * teacher_metrics['AP'])

    first_seed = records[0]['seed']
    scalars = first_seed_scalars(records)
    plot_curves({arm: s.get('loss_cls', []) for arm, s in scalars.items()},
                osp.join(out, 'loss_curves.png'), 'RoI classification loss',
                f'student detection loss, seed {first_seed} (logger window means)')
    vrm_scalars = scalars.get(VRM, {})
    plot_curves({'VRM': vrm_scalars.get('distill/kept_fraction', [])},
                osp.join(out, 'kept_fraction.png'), 'kept inter-sample edges',
                'fraction of edges kept after pruning, per iteration', ylim=(0, 1.02))
    plot_curves({arm: s.get('distill/unit_edge_share_sample', []) for arm, s in scalars.items()
                 if 'distill/unit_edge_share_sample' in s},
                osp.join(out, 'unit_edge_share.png'), 'unit-edge share, inter-sample graph',
                'share of kept edges matched as unit vectors on both sides', ylim=(0, 1.02))
    plot_curves({'mean over edges': vrm_scalars.get('distill/joint_entropy', []),
                 'largest kept (threshold)': vrm_scalars.get(
                     'distill/joint_entropy_threshold', [])},
                osp.join(out, 'joint_entropy.png'), 'joint entropy (nats)',
                "VRM student's joint entropy of the edges, per iteration")
    vrm_run = next(r for r in records if r['arm'] == VRM and r['seed'] == first_seed)
    cfg = run_config(vrm_run['config'], first_seed, data_root, vrm_run['run_dir'],
                     settings.student_iters, 'relations')
    cfg.model.teacher_ckpt = teacher_ckpt
    graph = plot_distiller_relations(cfg, vrm_run['checkpoint'], osp.join(out, 'relations.png'))

    teacher = (f"Teacher AP {100 * teacher_metrics['AP']:.1f} (seed 0, "
               f"{'reused' if teacher_seconds == 0 else f'{teacher_seconds:.0f} s'})")
    lines = [
        '# vrm_det demo report', '',
        'One teacher, then one student architecture trained several ways with the same seeds; '
        "every model evaluated with mmdet's CocoMetric on the val split. The control arm "
        "trains the student on VRM's virtual view as well (its own detection loss on both "
        'views) with no teacher: VRM is the only method whose student sees augmented images, '
        'and the control tells how much of a gain the augmentation alone explains. Control + '
        'VRM adds VRM to the control, so alone, control and control + VRM add one thing at '
        "a time. The unit-edge share is the share of the loss's edges matched as unit "
        'vectors on both sides, as the paper defines them; the rest fall under the '
        'detection configs\' edge-length floor (docs/user_guide.md, "Stability").', '',
        f'Virtual view of the control and VRM arms: {settings.view} '
        f'({VIEW_DESCRIPTIONS[settings.view]}).', '',
        *results_section(records, ALONE, 'AP', teacher, settings.seeds, jobs, wall_s),
        '## AP over seeds', '', '![AP](ap.png)', '',
        f'## Training loss (seed {first_seed})', '', '![loss curves](loss_curves.png)', '',
        '## Pruning (VRM)', '',
        'Edges whose joint entropy lies above the percentile are pruned, so the kept fraction '
        'sits at the percentile (more only where entropies tie); the threshold below is the '
        "largest joint entropy of a kept edge: it and the mean follow the student's "
        'uncertainty over training.', '',
        '![kept fraction](kept_fraction.png)', '', '![joint entropy](joint_entropy.png)', '',
        '## Unit-edge share (VRM arms)', '', '![unit-edge share](unit_edge_share.png)', '',
        '## Relation graphs of one batch', '',
        f"Teacher and VRM student (seed {first_seed}), {graph['vertices_drawn']} RoI vertices "
        f"drawn; {100 * graph['kept_fraction']:.1f}% of the batch's edges kept, "
        f"{100 * graph['unit_edge_share']:.1f}% of them matched as unit vectors on both "
        'sides.', '',
        '![relation graphs](relations.png)', '',
    ]
    path = osp.join(out, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path
