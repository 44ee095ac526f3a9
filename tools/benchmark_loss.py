"""Time and peak memory of the distillation losses, forward + backward, on CPU.

Every configuration runs in its own process: its peak memory is the peak
resident set size of the first forward + backward above the level reached
after imports and input creation (CPU tensors are invisible to Python's
tracemalloc). Times are medians of repeated runs after that first call.
Configurations whose estimated memory exceeds ``--max-gb`` are reported as
skipped instead of run.

    python tools/benchmark_loss.py                       # the full table
    python tools/benchmark_loss.py --scales det:1024:81  # one scale
    python tools/benchmark_loss.py --json work_dirs/benchmark_loss.json
"""
import argparse
import json
import subprocess
import sys

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


def run_worker(method, batch, num_classes, min_repeats, budget_s):
    """Measure one configuration in this process and print a JSON record."""
    import torch

    from vrm_det.registry import MMDET_MODELS
    from vrm_det.utils.profiling import PeakMemory, median_ms, timed_runs

    loss_fn = MMDET_MODELS.build(METHODS[method][0])
    gen = torch.Generator().manual_seed(0)
    student = (3 * torch.randn(batch, num_classes, generator=gen)).requires_grad_(True)
    student_virtual = (3 * torch.randn(batch, num_classes, generator=gen)).requires_grad_(True)
    teacher = 3 * torch.randn(batch, num_classes, generator=gen)
    teacher_virtual = 3 * torch.randn(batch, num_classes, generator=gen)
    labels = torch.randint(num_classes, (batch,), generator=gen)

    def step():
        losses = loss_fn(student, teacher, student_virtual, teacher_virtual, labels)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        student.grad = student_virtual.grad = None

    with PeakMemory() as memory:
        step()  # the first call allocates what the loss needs; later ones reuse it
    times = timed_runs(step, min_repeats, budget_s)
    print(json.dumps(dict(method=method.split('-')[0],
                          impl=method.split('-')[1] if '-' in method else '',
                          B=batch, C=num_classes, ms=median_ms(times),
                          peak_mb=round(memory.peak_mb, 1), repeats=len(times),
                          threads=torch.get_num_threads())))


def measure(method, scale, args):
    _, batch, num_classes = scale.split(':')
    batch, num_classes = int(batch), int(num_classes)
    record = dict(method=method.split('-')[0], impl=method.split('-')[1] if '-' in method else '',
                  B=batch, C=num_classes, ms=None, peak_mb=None)
    estimate_gb = METHODS[method][1](batch, num_classes) / 2**30
    if estimate_gb > args.max_gb:
        record['skipped'] = f'estimated {estimate_gb:.0f} GB > --max-gb {args.max_gb:g}'
        return record
    cmd = [sys.executable, __file__, '--worker', method, str(batch), str(num_classes),
           '--min-repeats', str(args.min_repeats), '--budget-s', str(args.budget_s)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        record['skipped'] = f'failed (exit {done.returncode}): {done.stderr.strip()[-200:]}'
        return record
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_table(records):
    header = (f"{'scale':>12} {'method':<14} {'ms (median)':>12} {'peak MB':>9} "
              f"{'x faster':>9} {'x less mem':>10}")
    lines = [header, '-' * len(header)]
    reference = {(r['B'], r['C']): r for r in records
                 if r['method'] == 'vrm' and r['impl'] == 'reference' and r['ms']}
    for r in records:
        name = r['method'] + (f"-{r['impl']}" if r['impl'] else '')
        scale = f"B={r['B']},C={r['C']}"
        if r.get('skipped'):
            lines.append(f"{scale:>12} {name:<14} skipped: {r['skipped']}")
            continue
        ref = reference.get((r['B'], r['C']))
        speed = mem = ''
        if ref and r['method'] == 'vrm' and r['impl'] == 'fused':
            speed = f"{ref['ms'] / r['ms']:.1f}"
            mem = f"{ref['peak_mb'] / max(r['peak_mb'], 0.1):.1f}"
        lines.append(f"{scale:>12} {name:<14} {r['ms']:>12.2f} {r['peak_mb']:>9.1f} "
                     f"{speed:>9} {mem:>10}")
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scales', nargs='+', default=DEFAULT_SCALES,
                        help='KIND:B:C entries (KIND is a label: det or cls)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    parser.add_argument('--max-gb', type=float, default=12.0,
                        help='skip configurations estimated to need more memory')
    parser.add_argument('--min-repeats', type=int, default=3)
    parser.add_argument('--budget-s', type=float, default=3.0,
                        help='timed seconds per configuration (at least --min-repeats runs)')
    parser.add_argument('--json', help='write the records to this file')
    parser.add_argument('--worker', nargs=3, metavar=('METHOD', 'B', 'C'), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, batch, num_classes = args.worker
        run_worker(method, int(batch), int(num_classes), args.min_repeats, args.budget_s)
        return

    records = []
    total = len(args.scales) * len(args.methods)
    for scale in args.scales:
        for method in args.methods:
            print(f'[{len(records) + 1}/{total}] {scale} {method}', file=sys.stderr, flush=True)
            records.append(measure(method, scale, args))
    print(format_table(records))
    if args.json:
        write_records(args.json, records)


if __name__ == '__main__':
    main()
