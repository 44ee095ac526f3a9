"""Render the teacher's and the student's relation graphs for one batch.

    python tools/analysis/plot_relations.py CONFIG STUDENT_CKPT --teacher-ckpt T.pth \\
        [--data-root data/toy_coco] [--out relations.png]

CONFIG is a VRM distiller config; STUDENT_CKPT a checkpoint written while
training it (or a converted student checkpoint). The batch is the first of
the config's training dataloader.
"""
import argparse

from mmengine.config import DictAction

import vrm_det  # noqa: F401
from vrm_det.apis import load_config, set_data_root
from vrm_det.visualization import plot_distiller_relations


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a VRM distiller config')
    parser.add_argument('student_ckpt', help='distiller or student checkpoint')
    parser.add_argument('--teacher-ckpt', help="default: the config's teacher_ckpt")
    parser.add_argument('--data-root', help="default: the config's data_root")
    parser.add_argument('--out', default='relations.png')
    parser.add_argument('--max-vertices', type=int, default=32)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    if args.teacher_ckpt:
        cfg.model.teacher_ckpt = args.teacher_ckpt
    if args.data_root:
        set_data_root(cfg, args.data_root)
    info = plot_distiller_relations(cfg, args.student_ckpt, args.out, args.max_vertices)
    print(f"wrote {args.out}: {info['vertices_drawn']} vertices drawn, "
          f"{100 * info['kept_fraction']:.1f}% of the batch's edges kept")


if __name__ == '__main__':
    main()
