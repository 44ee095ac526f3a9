"""Methods compared over seeds: every arm trained once per seed against one
teacher, AP reported as mean and standard deviation, each arm's gain over a
reference arm with whether it exceeds the seed spread, and the training's
gradient norms beside it (a diverging arm shows there first).

Runs can train side by side in several processes (``jobs``); each then gets
``cpu_count // jobs`` threads. Small CPU models use two threads poorly, so two
single-threaded runs finish sooner than the same runs one after the other.
A run's numbers depend on its thread count (the order of float reductions),
not on which process or in what order it ran.
"""
import ast
import json
import multiprocessing
import os
import os.path as osp
import shlex
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .runs import read_scalars, run_config, train_and_evaluate

_WORKER_SLOT = 0  # the terminal line of this worker's progress bar


def _series_max(series: Dict[str, list], key: str) -> Optional[float]:
    values = [value for _, value in series.get(key, [])]
    return max(values) if values else None


def _series_mean_min(series: Dict[str, list], key: str) -> Optional[List[float]]:
    values = [value for _, value in series.get(key, [])]
    return [statistics.mean(values), min(values)] if values else None


def parse_arm(spec: str) -> Tuple[str, Dict[str, object]]:
    """An arm's config and its config options from ``'CONFIG [key=value ...]'``.

    The spec is split as a shell splits it (quote a value holding spaces);
    keys are dotted paths into the config's dicts
    (``model.distill_loss.edge_floor=0``); a value is read as a Python literal
    where it is one, else as a string. Arms that differ in one option then
    need no config file of their own.
    """
    config, *items = shlex.split(spec)
    options = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise ValueError(f'arm option {item!r} in {spec!r}: write key=value')
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value
    return config, options


def _std(values: List[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _mean_std(values: List[float]) -> str:
    if not values:
        return 'n/a'
    return f'{statistics.mean(values):.1f} ± {_std(values):.1f}'


def _largest(rows: List[dict], key: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    return f'{max(values):.3g}' if values else '—'


def metric_by_arm(records: List[dict], metric: str = 'AP') -> Dict[str, Dict[int, float]]:
    """A metric in % per arm and seed, arms in the order they were first recorded."""
    values: Dict[str, Dict[int, float]] = {}
    for record in records:
        values.setdefault(record['arm'], {})[record['seed']] = 100 * record[metric]
    return values


def gain_over(aps: Dict[int, float], reference: Dict[int, float]) -> dict:
    """An arm's gain in a metric (AP, accuracy) over a reference arm, seed by seed.

    Args:
        aps (dict[int, float]): The arm's metric per seed.
        reference (dict[int, float]): The reference arm's metric per seed.

    Returns:
        dict: ``gain`` (mean of the paired differences over the seeds both
        ran), ``gain_std`` (their standard deviation), ``spread`` (the larger
        of the two arms' standard deviations over seeds) and
        ``exceeds_spread`` (``gain > spread``: the gain is larger than what a
        change of seed moves either arm by). With one seed there is no spread
        and ``exceeds_spread`` is None.
    """
    seeds = sorted(set(aps) & set(reference))
    differences = [aps[s] - reference[s] for s in seeds]
    gain = statistics.mean(differences) if differences else float('nan')
    if len(seeds) < 2:
        return dict(gain=gain, gain_std=0.0, spread=None, exceeds_spread=None)
    spread = max(_std([aps[s] for s in seeds]), _std([reference[s] for s in seeds]))
    return dict(gain=gain, gain_std=_std(differences), spread=spread,
                exceeds_spread=gain > spread)


def summary_table(records: List[dict], reference: Optional[str] = None,
                  metric: str = 'AP') -> str:
    """Markdown: ``metric`` (in %) as mean ± std over seeds per arm, its value
    per seed, the gain over ``reference`` (default: the first arm) and whether
    it exceeds the seed spread, and the largest logged gradient norms."""
    aps = metric_by_arm(records, metric)
    reference = reference if reference is not None else next(iter(aps), None)
    lines = [f'| arm | {metric} (mean ± std) | {metric} per seed | gain over {reference} | '
             'gain exceeds seed spread | max grad norm | max distill grad norm | '
             'unit-edge share, inter-sample / inter-class: mean (min) |',
             '| --- | ---: | --- | ---: | :---: | ---: | ---: | ---: |']
    for arm, per_seed in aps.items():
        rows = [r for r in records if r['arm'] == arm]
        values = [per_seed[s] for s in sorted(per_seed)]
        if arm == reference:
            gain_text, verdict = '—', '—'
        else:
            gain = gain_over(per_seed, aps[reference]) if reference in aps else None
            gain_text = '—' if gain is None else f"{gain['gain']:+.1f} ± {gain['gain_std']:.1f}"
            verdict = ('—' if gain is None or gain['exceeds_spread'] is None else
                       'yes' if gain['exceeds_spread'] else 'no')
        lines.append(f"| {arm} | {_mean_std(values)} | {', '.join(f'{a:.1f}' for a in values)} "
                     f"| {gain_text} | {verdict} | {_largest(rows, 'max_grad_norm')} | "
                     f"{_largest(rows, 'max_distill_grad_norm')} | {_unit_edge_share(rows)} |")
    return '\n'.join(lines)


def _unit_edge_share(rows: List[dict]) -> str:
    """Mean over the arm's runs and logged steps, and the smallest step's value."""
    parts = []
    for graph in ('sample', 'class'):
        stats = [r[f'unit_edge_share_{graph}'] for r in rows
                 if r.get(f'unit_edge_share_{graph}') is not None]
        if not stats:
            return '—'
        parts.append(f'{statistics.mean(s[0] for s in stats):.3f} '
                     f'({min(s[1] for s in stats):.3f})')
    return ' / '.join(parts)


def gains_in_words(records: List[dict], reference: str, metric: str = 'AP') -> List[str]:
    """One sentence per arm: its gain over the reference and whether a change
    of seed explains it."""
    aps = metric_by_arm(records, metric)
    sentences = []
    for arm, per_seed in aps.items():
        if arm == reference or reference not in aps:
            continue
        gain = gain_over(per_seed, aps[reference])
        if gain['exceeds_spread'] is None:
            sentences.append(f"{arm}: {gain['gain']:+.1f} {metric} over {reference} with one seed, "
                             'which cannot be told apart from seed noise.')
        else:
            verdict = ('exceeds' if gain['exceeds_spread'] else 'does not exceed')
            sentences.append(f"{arm}: {gain['gain']:+.1f} {metric} over {reference} (mean of the "
                             f"paired seed differences), which {verdict} the seed spread "
                             f"({gain['spread']:.1f} {metric}).")
    return sentences


def first_seed_scalars(records: List[dict]) -> Dict[str, dict]:
    """The logged series of each arm's run with the first seed."""
    first_seed = records[0]['seed']
    return {r['arm']: read_scalars(r['run_dir']) for r in records if r['seed'] == first_seed}


def results_section(records: List[dict], reference: str, metric: str, teacher: str,
                    seeds: Sequence[int], jobs: int, wall_s: float) -> List[str]:
    """A demo report's results in markdown lines: the teacher, the table, each
    arm's gain in words and the time the runs took.

    Args:
        teacher (str): The teacher's result as the report states it.
    """
    seconds = sum(r['seconds'] for r in records)
    return [
        f"{teacher}. Students: {metric} in %, seeds {', '.join(str(s) for s in seeds)}. A gain "
        "*exceeds the seed spread* when the arm's mean gain over the student alone (paired "
        "by seed) is larger than the larger of the two arms' standard deviations over seeds.",
        '', summary_table(records, reference, metric), '',
        *[f'- {sentence}' for sentence in gains_in_words(records, reference, metric)], '',
        f'{len(records)} student runs, {jobs} side by side, {seconds / 60:.1f} min of training '
        f'in all; the whole demo took {wall_s / 60:.1f} min.', '',
    ]


def train_arm(arm: str, config: str, seed: int, data_root: str, run_dir: str,
              teacher_ckpt: Optional[str], iters: Optional[int],
              progress_position: int = 0) -> dict:
    """Train one arm with one seed and evaluate it; the record of the run.

    ``config`` may carry config options after the file (see :func:`parse_arm`).
    """
    import vrm_det  # noqa: F401  (registers the models in a fresh worker process)

    path, options = parse_arm(config)
    cfg = run_config(path, seed, data_root, run_dir, iters, f'{arm} s{seed}',
                     progress_position=progress_position, options=options)
    if 'teacher_ckpt' in cfg.model:
        if teacher_ckpt is None:
            raise ValueError(f'{config} distils from a teacher: give teacher_ckpt')
        cfg.model.teacher_ckpt = teacher_ckpt
    checkpoint, metrics, seconds = train_and_evaluate(cfg)
    scalars = read_scalars(run_dir)
    return dict(arm=arm, seed=seed, config=config, checkpoint=checkpoint, run_dir=run_dir,
                seconds=seconds, **metrics,
                max_grad_norm=_series_max(scalars, 'grad_norm'),
                max_distill_grad_norm=_series_max(scalars, 'distill/distill_grad_norm'),
                # [mean, min] over the logged steps
                unit_edge_share_sample=_series_mean_min(scalars,
                                                        'distill/unit_edge_share_sample'),
                unit_edge_share_class=_series_mean_min(scalars, 'distill/unit_edge_share_class'))


def _init_worker(threads: int, slots) -> None:
    global _WORKER_SLOT
    import warnings

    import torch
    torch.set_num_threads(threads)
    # mmengine switches a spawned worker to its configured 'fork' start method
    # and says so; the runs' dataloaders use no worker processes.
    warnings.filterwarnings('ignore', message='Multi-processing start method')
    with slots.get_lock():
        _WORKER_SLOT = slots.value
        slots.value += 1


def _train_arm_in_worker(*args) -> dict:
    return train_arm(*args, progress_position=_WORKER_SLOT)


def default_jobs(num_runs: int) -> int:
    """Processes to train ``num_runs`` runs side by side: one per core, at most 8."""
    return max(1, min(num_runs, os.cpu_count() or 1, 8))


def compare_over_seeds(arms: Dict[str, str], seeds: Sequence[int], data_root: str,
                       work_dir: str, teacher_ckpt: Optional[str] = None,
                       iters: Optional[int] = None, jobs: int = 1,
                       reference: Optional[str] = None, metric: str = 'AP') -> List[dict]:
    """Train every arm with every seed and evaluate it.

    Args:
        arms (dict[str, str]): Name -> config file, optionally followed by
            config options (``'CONFIG model.roi_vertices=balanced'``, see
            :func:`parse_arm`). Distiller configs get ``teacher_ckpt``.
        seeds (Sequence[int]): Seeds; each arm runs once per seed.
        data_root (str): The dataset the configs are pointed at (a COCO-format
            one for detection, what the config's dataset reads for
            classification).
        work_dir (str): Runs go to ``work_dir/<arm>/seed<k>``; ``results.json``
            (written after every run) and ``summary.md`` are written there.
        teacher_ckpt (str, optional): A trained teacher (see
            :func:`train_teacher`).
        iters (int, optional): Iterations of each arm (default: the config's).
        jobs (int): Runs trained side by side, each in its own process with
            ``cpu_count // jobs`` threads; 1 trains them one after the other
            in this process.
        reference (str, optional): The arm gains are measured against
            (default: the first).
        metric (str): The metric printed and summarised: ``'AP'`` (detection)
            or ``'top1'`` (classification).

    Returns:
        list[dict]: One record per run, in the order of ``seeds`` then
        ``arms``: arm, seed, config, checkpoint, run_dir, the metrics
        (fractions: AP, AP50, ... or top1, top5), seconds and the largest
        logged gradient norms.
    """
    if jobs < 1:
        raise ValueError(f'jobs={jobs}: give 1 or more processes')
    os.makedirs(work_dir, exist_ok=True)
    runs = [(arm, config, seed, data_root, osp.join(work_dir, _dir_name(arm), f'seed{seed}'),
             teacher_ckpt, iters) for seed in seeds for arm, config in arms.items()]
    start = time.perf_counter()
    records: Dict[int, dict] = {}

    def finished(index: int, record: dict) -> None:
        records[index] = record
        elapsed = time.perf_counter() - start
        print(f"[{len(records)}/{len(runs)}] {record['arm']} seed {record['seed']}: "
              f"{metric} {100 * record[metric]:.1f} ({record['seconds']:.0f} s; "
              f'{elapsed / 60:.1f} min so far)', flush=True)
        with open(osp.join(work_dir, 'results.json'), 'w') as f:
            json.dump([records[i] for i in sorted(records)], f, indent=1)

    if jobs == 1:
        for index, run in enumerate(runs):
            finished(index, train_arm(*run))
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        print(f'training {len(runs)} runs, {jobs} at a time ({threads} thread(s) each)',
              flush=True)
        context = multiprocessing.get_context('spawn')
        slots = context.Value('i', 0)
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(threads, slots)) as pool:
            # Each seed's arms in reverse: the reference (usually the cheapest, a
            # student alone) runs last, so the workers finish close together.
            order = sorted(range(len(runs)), key=lambda i: (i // len(arms), -i))
            futures = {pool.submit(_train_arm_in_worker, *runs[i]): i for i in order}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    ordered = [records[i] for i in range(len(runs))]
    table = summary_table(ordered, reference, metric)
    with open(osp.join(work_dir, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    return ordered


def _dir_name(arm: str) -> str:
    """A directory name for an arm's label ('student + KD' -> 'student_kd')."""
    kept = ''.join(c.lower() if c.isalnum() else '_' for c in arm)
    return '_'.join(part for part in kept.split('_') if part)


def train_teacher(config: str, data_root: str, work_dir: str, iters: Optional[int] = None,
                  seed: int = 0, reuse: bool = False):
    """Train and evaluate the teacher once: its checkpoint, metrics and seconds.

    With ``reuse``, a teacher this function trained before in ``work_dir`` is
    taken as it is (seconds 0) and nothing is trained.
    """
    record_file = osp.join(work_dir, 'demo_metrics.json')
    if reuse and osp.isfile(record_file):
        with open(record_file) as f:
            record = json.load(f)
        if osp.isfile(record['checkpoint']):
            print(f"reusing the teacher trained before: {record['checkpoint']} "
                  '(pass --retrain-teacher to train it again)')
            return record['checkpoint'], record['metrics'], 0.0
    cfg = run_config(config, seed, data_root, work_dir, iters, 'teacher')
    return train_and_evaluate(cfg)


@dataclass
class ComparisonSettings:
    """What a demo's comparison trains and where it writes: one teacher, then
    every student arm once per seed."""
    work_dir: str = 'work_dirs/comparison'
    teacher_config: str = ''
    seeds: Sequence[int] = field(default_factory=lambda: (0, 1, 2))
    jobs: Optional[int] = None  # runs side by side; None: one per core
    teacher_iters: Optional[int] = None  # None: the config's schedule
    student_iters: Optional[int] = None
    retrain_teacher: bool = False


def add_comparison_arguments(parser, defaults: ComparisonSettings) -> None:
    """The command-line options of :class:`ComparisonSettings` (the demos' tools)."""
    parser.add_argument('--work-dir', default=defaults.work_dir)
    parser.add_argument('--teacher-config', default=defaults.teacher_config)
    parser.add_argument('--seeds', type=int, nargs='+', default=list(defaults.seeds),
                        help='one run of every student arm per seed (default: '
                        f"{' '.join(map(str, defaults.seeds))})")
    parser.add_argument('--jobs', type=int,
                        help='runs trained side by side (default: one per core)')
    parser.add_argument('--teacher-iters', type=int, help="default: the config's schedule")
    parser.add_argument('--student-iters', type=int, help="default: the config's schedule")
    parser.add_argument('--retrain-teacher', action='store_true',
                        help='train the teacher again instead of reusing it')


def numbered_stages(name: str, total: int) -> Callable[[str], None]:
    """A function that prints the next numbered stage heading: ``[name k/total] text``."""
    count = iter(range(1, total + 1))
    return lambda text: print(f'\n[{name} {next(count)}/{total}] {text}', flush=True)


def teacher_then_arms(settings: ComparisonSettings, data_root: str, arms: Dict[str, str],
                      metric: str, stage: Callable[[str], None]) -> dict:
    """Train (or reuse) the teacher, then every arm with every seed.

    Args:
        settings (ComparisonSettings): What to train and where.
        data_root (str): The dataset the configs are pointed at.
        arms (dict[str, str]): Arm label -> config, the reference arm first.
        metric (str): ``'AP'`` or ``'top1'``.
        stage (callable): Prints a stage's heading.

    Returns:
        dict: ``teacher_ckpt``, ``teacher_metrics``, ``teacher_seconds`` (0
        when reused), ``records`` (see :func:`compare_over_seeds`) and
        ``jobs``.
    """
    stage(f'teacher ({osp.basename(settings.teacher_config)})')
    teacher_ckpt, teacher_metrics, teacher_seconds = train_teacher(
        settings.teacher_config, data_root, osp.join(settings.work_dir, 'teacher'),
        settings.teacher_iters, reuse=not settings.retrain_teacher)
    print(f'teacher {metric} {100 * teacher_metrics[metric]:.1f}')
    seeds = list(settings.seeds)
    jobs = settings.jobs or default_jobs(len(arms) * len(seeds))
    stage(f"{len(arms)} student arms x {len(seeds)} seed(s) ({', '.join(map(str, seeds))}): "
          f"{', '.join(arms)}")
    records = compare_over_seeds(arms, seeds, data_root, settings.work_dir, teacher_ckpt,
                                 settings.student_iters, jobs=jobs, reference=next(iter(arms)),
                                 metric=metric)
    return dict(teacher_ckpt=teacher_ckpt, teacher_metrics=teacher_metrics,
                teacher_seconds=teacher_seconds, records=records, jobs=jobs)
