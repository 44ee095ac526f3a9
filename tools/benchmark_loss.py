"""Time and peak memory of the distillation losses, forward + backward, on CPU.

Every configuration runs in its own process: its peak memory is the peak
resident set size of the first forward + backward above the level reached
after imports and input creation (CPU tensors are invisible to Python's
tracemalloc). Times are medians of repeated runs after that first call.
Configurations whose estimated memory exceeds ``--max-gb`` are reported as
skipped instead of run.

Inputs come from the distributions of :mod:`vrm_det.utils.benchmark_logits`:
i.i.d. logits, clustered ones (a background cluster, close views) and logits
captured from a training step (``tools/capture_logits.py``; they keep their
own B and C, so ``--scales`` does not apply to them). For the fused VRM loss
the table gives how many edges of each graph were computed from their
difference instead of by expansion.

    python tools/benchmark_loss.py                       # the full table, i.i.d. logits
    python tools/benchmark_loss.py --scales det:1024:81  # one scale
    python tools/benchmark_loss.py --methods vrm-reference vrm-fused \
        --distributions iid clustered captured:work_dirs/captured_logits/toy_vrm_iter600.pt
    python tools/benchmark_loss.py --json work_dirs/benchmark_loss.json
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

from vrm_det.utils.benchmark_logits import CLUSTERED_SETTINGS
from vrm_det.utils.profiling import write_records

METHODS = {
    # name: (loss config, bytes estimate of the loss computation for (B, C))
    'vrm-reference': (dict(type='VRMLoss', impl='reference'),
                      lambda b, c: 4 * 6 * (b * b * c + c * c * b)),
    'vrm-fused': (dict(type='VRMLoss', impl='fused'), lambda b, c: 4 * 30 * (b * b + c * c)),
    'kd': (dict(type='KDLoss'), lambda b, c: 4 * 10 * b * c),
    'dkd': (dict(type='DKDLoss'), lambda b, c: 4 * 20 * b * c),
    'dist': (dict(type='DISTLoss'), lambda b, c: 4 * 10 * b * c),
    # The angle term runs in blocks of about 4M floats (vrm_det.functional.rkd).
    'rkd': (dict(type='RKDLoss'), lambda b, c: 4 * (6 * (1 << 22) + 10 * b * b)),
    'gram': (dict(type='GramRelationLoss'), lambda b, c: 4 * 10 * b * b),
}
DEFAULT_SCALES = ['det:256:81', 'det:1024:81', 'det:2048:81', 'cls:64:100', 'cls:256:100',
                  'cls:512:100', 'cls:64:1000', 'cls:256:1000', 'cls:512:1000']
#: ``clustered`` on the command line stands for all of these.
CLUSTERED = [f'clustered:{share:g}:{spread:g}:{gap:g}' for share, spread, gap in CLUSTERED_SETTINGS]


def direct_edge_counts(inputs, edge_floor):
    """Edges of the inter-sample and the inter-class graph that the fused VRM
    loss computes from their difference at ``edge_floor``."""
    from vrm_det.functional import direct_edge_mask, inter_class_vertices, relation_floor

    s, v = inputs['student_logits'], inputs['student_virtual_logits']
    t, w = inputs['teacher_logits'], inputs['teacher_virtual_logits']
    counts = {}
    for graph, (s_src, s_dst, t_src, t_dst) in (
            ('is', (s, v, t, w)),
            ('ic', inter_class_vertices(s, v)[:2] + inter_class_vertices(t, w)[:2])):
        floor = relation_floor(t, w, s_src.shape[1], edge_floor)
        mask = direct_edge_mask(s_src, s_dst, t_src, t_dst, floor, floor)
        counts[f'direct_{graph}'] = int(mask.sum())
        counts[f'edges_{graph}'] = mask.numel()
    return counts


def run_worker(method, distribution, batch, num_classes, args):
    """Measure one configuration in this process and print a JSON record."""
    import torch

    from vrm_det.registry import MMDET_MODELS
    from vrm_det.utils.benchmark_logits import distribution_logits, loss_step
    from vrm_det.utils.profiling import PeakMemory, median_ms, timed_runs

    if args.threads:
        torch.set_num_threads(args.threads)
    loss_cfg = dict(METHODS[method][0])
    if method.startswith('vrm'):
        loss_cfg['edge_floor'] = args.edge_floor
    loss_fn = MMDET_MODELS.build(loss_cfg)
    inputs = distribution_logits(distribution, batch, num_classes)
    batch, num_classes = inputs['student_logits'].shape
    step = loss_step(loss_fn, inputs)

    with PeakMemory() as memory:
        step()  # the first call allocates what the loss needs; later ones reuse it
    times = timed_runs(step, args.min_repeats, args.budget_s)
    record = record_of(method, distribution, batch, num_classes)
    record.update(ms=median_ms(times), peak_mb=round(memory.peak_mb, 1), repeats=len(times),
                  threads=torch.get_num_threads())
    if method == 'vrm-fused':
        record.update(direct_edge_counts(inputs, args.edge_floor))
    print(json.dumps(record))


def record_of(method, distribution, batch, num_classes):
    return dict(method=method.split('-')[0],
                impl=method.split('-')[1] if '-' in method else '',
                distribution=distribution, B=batch, C=num_classes, ms=None, peak_mb=None)


def measure(method, distribution, batch, num_classes, args):
    record = record_of(method, distribution, batch, num_classes)
    estimate_gb = METHODS[method][1](batch, num_classes) / 2**30
    if estimate_gb > args.max_gb:
        record['skipped'] = f'estimated {estimate_gb:.0f} GB > --max-gb {args.max_gb:g}'
        return record
    cmd = [sys.executable, __file__, '--worker', method, distribution, str(batch),
           str(num_classes), '--min-repeats', str(args.min_repeats),
           '--budget-s', str(args.budget_s), '--threads', str(args.threads),
           '--edge-floor', str(args.edge_floor)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        record['skipped'] = f'failed (exit {done.returncode}): {done.stderr.strip()[-200:]}'
        return record
    return json.loads(done.stdout.strip().splitlines()[-1])


def captured_shape(distribution):
    """(B, C) of captured logits, read without running them."""
    from vrm_det.utils.benchmark_logits import captured_logits

    return tuple(captured_logits(distribution.partition(':')[2])['student_logits'].shape)


def distribution_label(distribution):
    """``captured:work_dirs/x/name.pt`` as ``captured:name``."""
    kind, _, params = distribution.partition(':')
    return f'captured:{Path(params).stem}' if kind == 'captured' else distribution


def format_table(records):
    header = (f"{'distribution':<26} {'scale':>13} {'method':<14} {'ms (median)':>12} "
              f"{'peak MB':>9} {'x faster':>9} {'x less mem':>10} {'x iid ms':>9} "
              f"{'direct edges (is, ic)':>22}")
    lines = [header, '-' * len(header)]

    def key(r, impl, distribution=None):
        return (r['B'], r['C'], distribution or r['distribution'], impl)
    vrm = {key(r, r['impl']): r for r in records if r['method'] == 'vrm' and r['ms']}
    for r in records:
        name = r['method'] + (f"-{r['impl']}" if r['impl'] else '')
        scale = f"B={r['B']},C={r['C']}"
        prefix = f"{distribution_label(r['distribution']):<26} {scale:>13} {name:<14}"
        if r.get('skipped'):
            lines.append(f"{prefix} skipped: {r['skipped']}")
            continue
        speed = mem = iid = direct = ''
        if r['method'] == 'vrm' and r['impl'] == 'fused':
            ref = vrm.get(key(r, 'reference'))
            if ref:
                speed = f"{ref['ms'] / r['ms']:.1f}"
                mem = f"{ref['peak_mb'] / max(r['peak_mb'], 0.1):.1f}"
            base = vrm.get(key(r, 'fused', 'iid'))
            if base:
                iid = f"{r['ms'] / base['ms']:.2f}"
            direct = f"{r['direct_is']}/{r['edges_is']}, {r['direct_ic']}/{r['edges_ic']}"
        lines.append(f"{prefix} {r['ms']:>12.2f} {r['peak_mb']:>9.1f} {speed:>9} {mem:>10} "
                     f"{iid:>9} {direct:>22}")
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scales', nargs='+', default=DEFAULT_SCALES,
                        help='KIND:B:C entries (KIND is a label: det or cls)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    parser.add_argument('--distributions', nargs='+', default=['iid'],
                        help='iid, clustered:SHARE:SPREAD:GAP, clustered (the four settings '
                        'of the issue), captured:PATH (logits from tools/capture_logits.py)')
    parser.add_argument('--max-gb', type=float, default=12.0,
                        help='skip configurations estimated to need more memory')
    parser.add_argument('--min-repeats', type=int, default=3)
    parser.add_argument('--budget-s', type=float, default=3.0,
                        help='timed seconds per configuration (at least --min-repeats runs)')
    parser.add_argument('--threads', type=int, default=0,
                        help="torch threads per configuration (0: torch's default)")
    parser.add_argument('--edge-floor', type=float, default=0.0,
                        help="VRM's edge_floor (default 0, VRMLoss's own; the detection "
                        'configs run 0.5)')
    parser.add_argument('--json', help='write the records to this file')
    parser.add_argument('--worker', nargs=4, metavar=('METHOD', 'DISTRIBUTION', 'B', 'C'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, distribution, batch, num_classes = args.worker
        run_worker(method, distribution, int(batch), int(num_classes), args)
        return

    distributions = [d for spec in args.distributions
                     for d in (CLUSTERED if spec == 'clustered' else [spec])]
    runs = []
    for distribution in distributions:
        if distribution.startswith('captured:'):
            shapes = [captured_shape(distribution)]
            if 'iid' in distributions:  # the i.i.d. time at the captured shape
                runs += [(method, 'iid') + shapes[0] for method in args.methods]
        else:
            shapes = [tuple(int(n) for n in scale.split(':')[1:]) for scale in args.scales]
        runs += [(method, distribution) + shape for shape in shapes for method in args.methods]
    runs = list(dict.fromkeys(runs))  # captured files of one shape share the i.i.d. runs
    records = []
    for index, (method, distribution, batch, num_classes) in enumerate(runs, 1):
        print(f'[{index}/{len(runs)}] {distribution} B={batch} C={num_classes} {method}',
              file=sys.stderr, flush=True)
        records.append(measure(method, distribution, batch, num_classes, args))
    print(format_table(records))
    if args.json:
        write_records(args.json, records)


if __name__ == '__main__':
    main()
