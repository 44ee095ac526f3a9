"""Train several configs over several seeds against one teacher and print AP
as mean ± std per arm, the gain of each arm over the first and whether it
exceeds the seed spread, with the largest gradient norms of each arm's training.

Example (the single-class toy set)::

    python tools/make_toy_coco.py --out data/toy_coco_1cls --classes disc
    python tools/analysis/compare_seeds.py --data-root data/toy_coco_1cls \\
        --teacher-config configs/toy/single_class/faster-rcnn_r18-w32_fpn_toy-1cls.py \\
        --arm alone=configs/toy/single_class/faster-rcnn_r18-w8_fpn_toy-1cls.py \\
        --arm vrm=configs/toy/single_class/vrm_faster-rcnn_r18-w32-w8_fpn_toy-1cls.py \\
        --seeds 0 1 2 --work-dir work_dirs/compare_1cls
"""
import argparse
import os.path as osp

from vrm_det.apis.seed_comparison import (
    compare_over_seeds,
    default_jobs,
    summary_table,
    train_teacher,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', required=True, help='COCO-format dataset')
    parser.add_argument('--arm', action='append', required=True,
                        metavar='NAME=CONFIG [KEY=VALUE ...]',
                        help='an arm to train; repeat for each. Config options may follow '
                        'the file in the same argument, e.g. '
                        '"floor 0=configs/x.py model.distill_loss.edge_floor=0"')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--teacher-config', help='trained once (seed 0) unless --teacher-ckpt')
    parser.add_argument('--teacher-ckpt', help='a trained teacher checkpoint')
    parser.add_argument('--iters', type=int, help="iterations per arm (default: the config's)")
    parser.add_argument('--teacher-iters', type=int)
    parser.add_argument('--jobs', type=int,
                        help='runs trained side by side (default: one per core)')
    parser.add_argument('--work-dir', default='work_dirs/compare_seeds')
    parser.add_argument('--metric', default='AP', choices=['AP', 'top1'],
                        help="AP (detection) or top1 (classification)")
    args = parser.parse_args()
    arms = {}
    for item in args.arm:
        name, sep, config = item.partition('=')
        if not sep or not name or not config:
            parser.error(f'--arm {item!r}: write NAME=CONFIG')
        arms[name] = config
    if args.teacher_ckpt is None and args.teacher_config is None:
        parser.error('give --teacher-ckpt or a --teacher-config to train')
    import vrm_det  # noqa: F401  (registers the distillers)
    teacher_ckpt = args.teacher_ckpt
    if teacher_ckpt is None:
        teacher_ckpt, metrics, _ = train_teacher(args.teacher_config, args.data_root,
                                                 osp.join(args.work_dir, 'teacher'),
                                                 args.teacher_iters)
        print(f"teacher {args.metric} {100 * metrics[args.metric]:.1f} ({teacher_ckpt})",
              flush=True)
    jobs = args.jobs or default_jobs(len(arms) * len(args.seeds))
    records = compare_over_seeds(arms, args.seeds, args.data_root, args.work_dir,
                                 teacher_ckpt, args.iters, jobs=jobs, metric=args.metric)
    print('\n' + summary_table(records, metric=args.metric))


if __name__ == '__main__':
    main()
