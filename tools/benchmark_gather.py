"""Cost of one VRM graph across processes: per-process graphs, the replicated
gathered graph and the sharded one, on gloo CPU processes.

For each process count k and vertex count B per process, k processes are
spawned per mode (a fresh group each, so that peak memory is that mode's
alone). Each times its own loss step, forward + backward of ``VRMLoss`` as
the distiller runs it (the sharded step includes the all-gather of the
layout), on clustered logits that look like a trained RoI head's
(:func:`vrm_det.utils.benchmark_logits.clustered_logits`, a different draw
per process). Reported per process (mean over the k processes, with the
largest): the median CPU time of the step (``time.process_time``: this
process's compute, not the time it waits in collectives for the others, which
on a machine with fewer cores than processes is mostly time the others
compute), the median wall time, and the peak resident memory of the first
step above the level before it. The last column is the sharded step's CPU
time over k times the per-process graph's.

    python tools/benchmark_gather.py                       # k = 1, 2, 4; B = 256, 1024; C = 81
    python tools/benchmark_gather.py --processes 2 --vertices 256 --repeats 3
"""
import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time

MODES = ('local', 'replicated', 'sharded')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def graph_loss(mode, loss):
    """The loss as the distiller calls it in ``mode``, on this process's rows."""
    from vrm_det.functional import VertexShards, vertices_sharded
    from vrm_det.models.distillers.base_distiller import BaseDistiller

    def local(student, teacher, student_virtual, teacher_virtual, labels):
        return loss(student, teacher, student_virtual, teacher_virtual)

    def replicated(student, teacher, student_virtual, teacher_virtual, labels):
        logits, _ = BaseDistiller._gather_graph(dict(
            student_logits=student, teacher_logits=teacher,
            student_virtual_logits=student_virtual, teacher_virtual_logits=teacher_virtual),
            None)
        return loss(**logits)

    def sharded(student, teacher, student_virtual, teacher_virtual, labels):
        with vertices_sharded(VertexShards.of_process_group(len(student))):
            return loss(student, teacher, student_virtual, teacher_virtual)

    return dict(local=local, replicated=replicated, sharded=sharded)[mode]


def _worker(rank, world_size, port, mode, vertices, args, out_dir):
    import torch
    import torch.distributed as dist

    from vrm_det.models.losses import VRMLoss
    from vrm_det.utils.benchmark_logits import CLUSTERED_SETTINGS, clustered_logits, loss_step
    from vrm_det.utils.profiling import PeakMemory

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        inputs = clustered_logits(vertices, args.classes, *CLUSTERED_SETTINGS[0], seed=rank)
        loss = VRMLoss(edge_floor=args.edge_floor)
        step = loss_step(graph_loss(mode, loss), inputs)
        dist.barrier()
        with PeakMemory() as memory:
            step()
        cpu, wall = [], []
        for _ in range(args.repeats):
            dist.barrier()  # every process starts the step together
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            step()
            cpu.append(time.process_time() - cpu_start)
            wall.append(time.perf_counter() - wall_start)
        record = dict(rank=rank, cpu_ms=1e3 * statistics.median(cpu),
                      wall_ms=1e3 * statistics.median(wall), peak_mb=memory.peak_mb)
        with open(os.path.join(out_dir, f'{rank}.json'), 'w') as out:
            json.dump(record, out)
    finally:
        dist.barrier()  # no process tears the group down under another
        dist.destroy_process_group()


def measure(world_size, mode, vertices, args):
    """Per-process records of one configuration, run in ``world_size`` fresh processes."""
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(world_size, free_port(), mode, vertices, args, out_dir),
                 nprocs=world_size)
        return [json.load(open(os.path.join(out_dir, f'{rank}.json')))
                for rank in range(world_size)]


def summary(records, key):
    values = [r[key] for r in records]
    return statistics.mean(values), max(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--processes', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--vertices', type=int, nargs='+', default=[256, 1024],
                        help='vertices (RoIs) per process')
    parser.add_argument('--classes', type=int, default=81)
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per process')
    parser.add_argument('--edge-floor', type=float, default=0.5,
                        help="VRMLoss's edge_floor (the detection configs' 0.5)")
    parser.add_argument('--modes', nargs='+', default=list(MODES), choices=MODES)
    parser.add_argument('--json', help='write the records to this file')
    args = parser.parse_args()

    header = (f"{'k':>2} {'B/process':>9} {'mode':<10} {'cpu ms':>8} {'(max)':>8} "
              f"{'wall ms':>8} {'peak MB':>8} {'(max)':>8} {'cpu / (k x local)':>18}")
    print(header + '\n' + '-' * len(header), flush=True)
    records = []
    for vertices in args.vertices:
        for world_size in args.processes:
            local_cpu = None
            for mode in [m for m in args.modes if world_size > 1 or m == 'local']:
                print(f'k={world_size} B={vertices} {mode}', file=sys.stderr, flush=True)
                ranks = measure(world_size, mode, vertices, args)
                cpu, cpu_max = summary(ranks, 'cpu_ms')
                wall, _ = summary(ranks, 'wall_ms')
                peak, peak_max = summary(ranks, 'peak_mb')
                if mode == 'local':
                    local_cpu = cpu
                ratio = (cpu / (world_size * local_cpu)
                         if mode != 'local' and local_cpu is not None else None)
                shown = '' if ratio is None else f'{ratio:.2f}'
                print(f'{world_size:>2} {vertices:>9} {mode:<10} {cpu:>8.1f} {cpu_max:>8.1f} '
                      f'{wall:>8.1f} {peak:>8.1f} {peak_max:>8.1f} {shown:>18}', flush=True)
                records.append(dict(k=world_size, B=vertices, C=args.classes, mode=mode,
                                    ranks=ranks, cpu_over_k_local=ratio))
    if args.json:
        from vrm_det.utils.profiling import write_records
        write_records(args.json, records)


if __name__ == '__main__':
    main()
