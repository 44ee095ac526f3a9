"""Methods compared over seeds: every arm trained once per seed against one
teacher, AP reported as mean and standard deviation, with the training's
gradient norms beside it (a diverging arm shows there first)."""
import json
import os
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from .demo import read_scalars, run_config, train_and_evaluate


def _series_max(series: Dict[str, list], key: str) -> Optional[float]:
    values = [value for _, value in series.get(key, [])]
    return max(values) if values else None


def _mean_std(values: List[float]) -> str:
    if not values:
        return 'n/a'
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.1f} ± {std:.1f}'


def _largest(rows: List[dict], key: str) -> str:
    values = [r[key] for r in rows if r.get(key) is not None]
    return f'{max(values):.3g}' if values else '—'


def summary_table(records: List[dict]) -> str:
    """Markdown: AP (in %) as mean ± std over seeds per arm, the seeds' APs,
    and the largest logged gradient norms."""
    lines = ['| arm | AP (mean ± std) | AP per seed | max grad norm | max distill grad norm |',
             '| --- | ---: | --- | ---: | ---: |']
    for arm in dict.fromkeys(r['arm'] for r in records):
        rows = [r for r in records if r['arm'] == arm]
        aps = [100 * r['AP'] for r in rows]
        per_seed = ', '.join(f'{a:.1f}' for a in aps)
        lines.append(f"| {arm} | {_mean_std(aps)} | {per_seed} | "
                     f"{_largest(rows, 'max_grad_norm')} | "
                     f"{_largest(rows, 'max_distill_grad_norm')} |")
    return '\n'.join(lines)


def compare_over_seeds(arms: Dict[str, str], seeds: Sequence[int], data_root: str,
                       work_dir: str, teacher_config: Optional[str] = None,
                       teacher_ckpt: Optional[str] = None, iters: Optional[int] = None,
                       teacher_iters: Optional[int] = None) -> List[dict]:
    """Train every arm with every seed and evaluate it.

    Args:
        arms (dict[str, str]): Name -> config file. Distiller configs get the
            teacher checkpoint below.
        seeds (Sequence[int]): Seeds; each arm runs once per seed.
        data_root (str): COCO-format dataset the configs are pointed at.
        work_dir (str): Runs go to ``work_dir/<arm>/seed<k>``; ``results.json``
            and ``summary.md`` are written there.
        teacher_config (str, optional): Trained once (seed 0) when no
            ``teacher_ckpt`` is given.
        teacher_ckpt (str, optional): A trained teacher.
        iters (int, optional): Iterations of each arm (default: the config's).
        teacher_iters (int, optional): Iterations of the teacher.

    Returns:
        list[dict]: One record per run: arm, seed, AP, AP50, AP75, seconds and
        the largest logged gradient norms.
    """
    os.makedirs(work_dir, exist_ok=True)
    if teacher_ckpt is None:
        if teacher_config is None:
            raise ValueError('give teacher_ckpt or a teacher_config to train')
        cfg = run_config(teacher_config, 0, data_root, osp.join(work_dir, 'teacher'),
                         teacher_iters, 'teacher')
        teacher_ckpt, metrics, _ = train_and_evaluate(cfg)
        print(f"teacher AP {100 * metrics['AP']:.1f} ({teacher_ckpt})", flush=True)
    records = []
    for seed in seeds:
        for arm, config in arms.items():
            run_dir = osp.join(work_dir, arm, f'seed{seed}')
            cfg = run_config(config, seed, data_root, run_dir, iters, f'{arm} s{seed}')
            if 'teacher_ckpt' in cfg.model:
                cfg.model.teacher_ckpt = teacher_ckpt
            _, metrics, seconds = train_and_evaluate(cfg)
            scalars = read_scalars(run_dir)
            records.append(dict(arm=arm, seed=seed, seconds=seconds, **metrics,
                                max_grad_norm=_series_max(scalars, 'grad_norm'),
                                max_distill_grad_norm=_series_max(
                                    scalars, 'distill/distill_grad_norm')))
            print(f"{arm} seed {seed}: AP {100 * metrics['AP']:.1f}", flush=True)
            with open(osp.join(work_dir, 'results.json'), 'w') as f:
                json.dump(records, f, indent=1)
    table = summary_table(records)
    with open(osp.join(work_dir, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    print('\n' + table)
    return records
