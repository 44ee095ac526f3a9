"""Train several configs over several seeds against one teacher and print AP
as mean ± std per arm, with the largest gradient norms of each arm's training.

Example (the single-class toy set)::

    python tools/make_toy_coco.py --out data/toy_coco_1cls --classes disc
    python tools/analysis/compare_seeds.py --data-root data/toy_coco_1cls \\
        --teacher-config configs/toy/single_class/faster-rcnn_r18-w32_fpn_toy-1cls.py \\
        --arm alone=configs/toy/single_class/faster-rcnn_r18-w8_fpn_toy-1cls.py \\
        --arm vrm=configs/toy/single_class/vrm_faster-rcnn_r18-w32-w8_fpn_toy-1cls.py \\
        --seeds 0 1 2 --work-dir work_dirs/compare_1cls
"""
import argparse

from vrm_det.apis.seed_comparison import compare_over_seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data-root', required=True, help='COCO-format dataset')
    parser.add_argument('--arm', action='append', required=True, metavar='NAME=CONFIG',
                        help='an arm to train; repeat for each')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--teacher-config', help='trained once (seed 0) unless --teacher-ckpt')
    parser.add_argument('--teacher-ckpt', help='a trained teacher checkpoint')
    parser.add_argument('--iters', type=int, help="iterations per arm (default: the config's)")
    parser.add_argument('--teacher-iters', type=int)
    parser.add_argument('--work-dir', default='work_dirs/compare_seeds')
    args = parser.parse_args()
    arms = {}
    for item in args.arm:
        name, sep, config = item.partition('=')
        if not sep or not name or not config:
            parser.error(f'--arm {item!r}: write NAME=CONFIG')
        arms[name] = config
    import vrm_det  # noqa: F401  (registers the distillers)
    compare_over_seeds(arms, args.seeds, args.data_root, args.work_dir, args.teacher_config,
                       args.teacher_ckpt, args.iters, args.teacher_iters)


if __name__ == '__main__':
    main()
