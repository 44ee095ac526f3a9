"""Save the four RoI logit matrices of one training step of a trained distiller.

Builds the toy VRM distiller with a trained teacher (and, optionally, the
student of a finished distillation run), draws one training batch from the
config's dataloader (train pipeline, virtual view, the student's RPN and
sampler) and saves what the distillation loss receives: student and teacher
logits on the real and the virtual view, and the RoI labels. The loss
benchmark reads the file (``--distributions captured:PATH``).

    python tools/capture_logits.py \\
        --teacher-ckpt work_dirs/demo/teacher/iter_600.pth \\
        --student-ckpt work_dirs/demo/vrm/iter_600.pth \\
        --out work_dirs/captured_logits/toy_vrm_iter600.pt
"""
import argparse
import os
from pathlib import Path

import torch

DEFAULT_CONFIG = (Path(__file__).resolve().parents[1] / 'configs' / 'toy'
                  / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--config', default=str(DEFAULT_CONFIG), help='a distiller config')
    parser.add_argument('--teacher-ckpt', required=True, help='the trained teacher')
    parser.add_argument('--student-ckpt',
                        help='a checkpoint of the distiller (its student); default: the '
                        "student as the config initialises it")
    parser.add_argument('--images', type=int, default=8, help='images in the batch')
    parser.add_argument('--rois', type=int, help="sampled RoIs per image (default: the config's)")
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='output file (.pt)')
    args = parser.parse_args()

    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner, load_checkpoint

    import vrm_det  # noqa: F401  (registers the models)
    from vrm_det.models.distillers import capture_distill_inputs
    from vrm_det.registry import MMDET_MODELS
    from vrm_det.utils.benchmark_logits import KEYS

    cfg = Config.fromfile(args.config)
    init_default_scope('mmdet')
    torch.manual_seed(args.seed)
    cfg.model.teacher_ckpt = args.teacher_ckpt
    if args.rois:
        cfg.model.student.train_cfg.rcnn.sampler.num = args.rois
    model = MMDET_MODELS.build(cfg.model)
    if args.student_ckpt:
        load_checkpoint(model, args.student_ckpt, map_location='cpu', strict=True)
    model.train()  # as in training: the sampler, batch-norm and the virtual view

    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(batch_size=args.images, sampler=dict(type='DefaultSampler', shuffle=True,
                                                          seed=args.seed))
    loader_cfg.pop('batch_sampler', None)
    batch = next(iter(Runner.build_dataloader(loader_cfg, seed=args.seed)))
    captured = capture_distill_inputs(model, batch)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    torch.save({key: captured[key].contiguous() for key in KEYS}, args.out)
    rows, classes = captured['student_logits'].shape
    background = int((captured['labels'] == classes - 1).sum())
    print(f'{args.out}: {rows} RoIs x {classes} classes ({background} background)')


if __name__ == '__main__':
    main()
