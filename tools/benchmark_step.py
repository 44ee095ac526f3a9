"""Time and peak memory of one training step: student alone, KD and VRM distillation.

Runs the toy configs (CPU) on generated images, each configuration in its own
process, with the student's sampler keeping ``--rois`` RoIs per image. For
the distillers it also times the distillation loss alone (forward + backward
on the logits captured from the step) and prints its share of the step.

    python tools/benchmark_step.py                    # 512 RoIs/image, 2 images of 320 px
    python tools/benchmark_step.py --json work_dirs/benchmark_step.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vrm_det.utils.profiling import write_records

CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / 'toy'
SETUPS = {
    'student': CONFIGS / 'faster-rcnn_r18-w8_fpn_toy.py',
    'kd': CONFIGS / 'kd_faster-rcnn_r18-w32-w8_fpn_toy.py',
    'vrm': CONFIGS / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py',
}
TEACHER = CONFIGS / 'faster-rcnn_r18-w32_fpn_toy.py'


def run_worker(setup, teacher_ckpt, args):
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from vrm_det.datasets import synthetic_detection_batch
    from vrm_det.models.distillers import capture_distill_inputs
    from vrm_det.registry import MMDET_MODELS
    from vrm_det.utils.profiling import PeakMemory, median_ms, timed_runs

    cfg = Config.fromfile(str(SETUPS[setup]))
    init_default_scope('mmdet')
    distilling = cfg.model.type == 'TwoStageDistiller'
    student_cfg = cfg.model.student if distilling else cfg.model
    # Enough proposals that the sampler can keep args.rois of them per image.
    student_cfg.train_cfg.rpn_proposal.update(nms_pre=2000, max_per_img=1000)
    student_cfg.train_cfg.rcnn.sampler.num = args.rois
    if distilling:
        cfg.model.teacher_ckpt = teacher_ckpt
    torch.manual_seed(0)
    model = MMDET_MODELS.build(cfg.model)
    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4))
    data = synthetic_detection_batch(args.images, args.image_size, num_boxes=5, num_classes=5)

    def step():
        model.train_step(data, optim_wrapper)

    with PeakMemory() as memory:
        step()  # the first step allocates what the step needs; later ones reuse it
    times = timed_runs(step, args.min_repeats, args.budget_s)
    record = dict(setup=setup, step_ms=median_ms(times), peak_mb=round(memory.peak_mb, 1),
                  repeats=len(times), images=args.images, image_size=args.image_size,
                  rois_per_image=args.rois)
    if distilling:
        captured = capture_distill_inputs(model, data)
        inputs = {k: v.clone().requires_grad_(k.startswith('student'))
                  if v.is_floating_point() else v for k, v in captured.items()}

        def loss_step():
            losses = model.distill_loss(**inputs)
            sum(v for k, v in losses.items() if 'loss' in k).backward()

        record['vertices'] = len(inputs['student_logits'])
        record['loss_ms'] = median_ms(timed_runs(loss_step, args.min_repeats, args.budget_s))
        record['loss_share'] = record['loss_ms'] / record['step_ms']
    print(json.dumps(record))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--setups', nargs='+', default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument('--rois', type=int, default=512, help='sampled RoIs per image')
    parser.add_argument('--images', type=int, default=2, help='images per batch')
    parser.add_argument('--image-size', type=int, default=320)
    parser.add_argument('--min-repeats', type=int, default=5)
    parser.add_argument('--budget-s', type=float, default=10.0)
    parser.add_argument('--json', help='write the records to this file')
    parser.add_argument('--worker', nargs=2, metavar=('SETUP', 'TEACHER_CKPT'),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(*args.worker, args)
        return

    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from vrm_det.registry import MMDET_MODELS

    records = []
    with tempfile.TemporaryDirectory() as tmp:
        # Step time does not depend on the teacher's weights: a random one will do.
        init_default_scope('mmdet')
        teacher = MMDET_MODELS.build(Config.fromfile(str(TEACHER)).model)
        teacher_ckpt = os.path.join(tmp, 'teacher.pth')
        torch.save(dict(state_dict=teacher.state_dict()), teacher_ckpt)
        for index, setup in enumerate(args.setups, 1):
            print(f'[{index}/{len(args.setups)}] {setup}', file=sys.stderr, flush=True)
            cmd = [sys.executable, __file__, '--worker', setup, teacher_ckpt,
                   '--rois', str(args.rois), '--images', str(args.images),
                   '--image-size', str(args.image_size), '--min-repeats',
                   str(args.min_repeats), '--budget-s', str(args.budget_s)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f'{setup} failed:\n{done.stderr[-2000:]}')
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))

    base = next((r for r in records if r['setup'] == 'student'), None)
    print(f"{args.images} images of {args.image_size} px, {args.rois} RoIs/image")
    print(f"{'setup':<8} {'step ms':>9} {'x student':>10} {'peak MB':>9} {'vertices':>9} "
          f"{'loss ms':>8} {'loss share':>11}")
    for r in records:
        ratio = f"{r['step_ms'] / base['step_ms']:.2f}" if base else ''
        loss = f"{r['loss_ms']:.1f}" if 'loss_ms' in r else ''
        share = f"{100 * r['loss_share']:.1f}%" if 'loss_share' in r else ''
        print(f"{r['setup']:<8} {r['step_ms']:>9.1f} {ratio:>10} {r['peak_mb']:>9.1f} "
              f"{r.get('vertices', ''):>9} {loss:>8} {share:>11}")
    if args.json:
        write_records(args.json, records)


if __name__ == '__main__':
    main()
