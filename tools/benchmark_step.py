"""Time and peak memory of one training step: student alone, KD and VRM distillation.

Runs the toy configs (CPU) on generated images, each configuration in its own
process, with the student's sampler keeping ``--rois`` RoIs per image. For
the distillers it also times the distillation loss alone (forward + backward
on the logits captured from the step) and prints its share of the step.

Each distiller step is measured against its floor, in the same process, on
the same images, alternating with it: the work no implementation of the
method can skip. For VRM that is the student's forward and backward on both
views (its own detection losses on the real view, the RoI head on the same
RoIs of the virtual view), the teacher's forward on both views and the
optimizer step; for KD the same on the real view alone. The floor's virtual
images are made once, outside the timing. ``x floor`` is the median ratio of
a step to the floor run right after it. A per-phase breakdown of both (the
median of each phase) shows where the step spends what lies above its floor.

    python tools/benchmark_step.py                    # 512 RoIs/image, 2 images of 320 px
    python tools/benchmark_step.py --json work_dirs/benchmark_step.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vrm_det.utils.profiling import write_records

CONFIGS = Path(__file__).resolve().parents[1] / 'configs' / 'toy'
SETUPS = {
    'student': CONFIGS / 'faster-rcnn_r18-w8_fpn_toy.py',
    'kd': CONFIGS / 'kd_faster-rcnn_r18-w32-w8_fpn_toy.py',
    'vrm': CONFIGS / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py',
}
TEACHER = CONFIGS / 'faster-rcnn_r18-w32_fpn_toy.py'
PHASES = ('preprocess', 'virtual view', 'student real', 'student virtual', 'student (both views)',
          'RPN + sampling', 'RoI heads', 'teacher', 'loss', 'backward', 'optimizer', 'other')


def floor_losses(model, inputs, data_samples, virtual):
    """The losses of a distiller step without the distillation: the student's
    detection losses on the real view, its RoI head on the same RoIs of the
    virtual view (a zero-weight stand-in loss keeps that branch in the
    backward pass) and the teacher's forward on every view the step uses."""
    import torch
    from mmdet.structures.bbox import bbox2roi

    num_images = len(inputs)
    image_sizes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
    with_virtual = virtual is not None
    real_feats, all_feats = model.student_features(inputs, virtual)
    losses, proposals = model._rpn(real_feats, data_samples)
    sampling_results = model._sample_rois(real_feats, proposals, data_samples)
    rois = bbox2roi([res.priors for res in sampling_results])
    scores = model.score_rois(model.student, all_feats if with_virtual else real_feats, rois,
                              num_images, with_virtual)
    num_rois = len(rois)
    roi_head = model.student.roi_head
    losses.update(roi_head.bbox_head.loss_and_target(
        cls_score=scores['cls_score'][:num_rois], bbox_pred=scores['bbox_pred'][:num_rois],
        rois=rois, sampling_results=sampling_results,
        rcnn_train_cfg=roi_head.train_cfg)['loss_bbox'])
    if with_virtual:
        losses['loss_virtual_stand_in'] = 0 * scores['cls_score'][num_rois:].mean()
    with torch.no_grad():
        model.score_rois(model.teacher, model.teacher_features(inputs, virtual, image_sizes),
                         rois, num_images, with_virtual)
    return losses


def time_phases(timer, model, optim_wrapper):
    """Label the methods a distiller step runs with the phases of the breakdown."""
    both_views_at_once = model._batch_norm_frozen()
    timer.time(model.data_preprocessor, 'forward', 'preprocess')
    timer.time(model, 'make_virtual_inputs', 'virtual view')
    timer.time(model.student, 'extract_feat',
               lambda index: 'student (both views)' if both_views_at_once
               else ('student real', 'student virtual')[min(index, 1)])
    timer.time(model, '_rpn', 'RPN + sampling')
    timer.time(model, '_sample_rois', 'RPN + sampling')
    timer.time(model, 'score_rois', 'RoI heads')
    timer.time(model.student.roi_head.bbox_head, 'loss_and_target', 'RoI heads')
    timer.time(model, 'teacher_features', 'teacher')
    timer.time(model, 'distill', 'loss')
    timer.time(optim_wrapper, 'backward', 'backward')
    timer.time(optim_wrapper, 'step', 'optimizer')
    timer.time(optim_wrapper, 'zero_grad', 'optimizer')


def run_worker(setup, teacher_ckpt, args):
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope

    from vrm_det.datasets import synthetic_detection_batch
    from vrm_det.models.distillers import capture_distill_inputs
    from vrm_det.registry import MMDET_MODELS
    from vrm_det.utils.profiling import PeakMemory, PhaseTimer, median_ms, median_phases, timed_runs

    if args.threads:
        torch.set_num_threads(args.threads)
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
    record = dict(setup=setup, peak_mb=round(memory.peak_mb, 1), images=args.images,
                  image_size=args.image_size, rois_per_image=args.rois)
    if not distilling:
        times = timed_runs(step, args.min_repeats, args.budget_s)
        record.update(step_ms=median_ms(times), repeats=len(times))
        print(json.dumps(record))
        return

    with torch.no_grad():
        batch = model.data_preprocessor(data, True)
        image_sizes = [sample.metainfo['img_shape'][:2] for sample in batch['data_samples']]
        fixed_virtual = model.make_virtual_inputs(batch['inputs'], image_sizes)

    def floor_step():
        with optim_wrapper.optim_context(model):
            prepared = model.data_preprocessor(data, True)
            losses = floor_losses(model, prepared['inputs'], prepared['data_samples'],
                                  fixed_virtual)
        optim_wrapper.update_params(model.parse_losses(losses)[0])

    floor_step()
    start = time.perf_counter()
    step()
    pair_s = 2 * (time.perf_counter() - start)
    repeats = max(args.min_repeats, min(50, int(args.budget_s / pair_s)))
    timer = PhaseTimer()
    time_phases(timer, model, optim_wrapper)
    step_runs, floor_runs = [], []
    for _ in range(repeats):  # alternating, so that load on the machine hits both alike
        step_runs.append(timer.measure(step))
        floor_runs.append(timer.measure(floor_step))
    timer.remove()
    record.update(repeats=repeats, phases=median_phases(step_runs),
                  floor_phases=median_phases(floor_runs), threads=torch.get_num_threads())
    record['step_ms'] = record['phases']['total']
    record['floor_ms'] = record['floor_phases']['total']
    # Each step against the floor run right after it: slow drifts in the
    # machine's load cancel in the ratio.
    record['floor_ratio'] = statistics.median(
        step['total'] / floor['total'] for step, floor in zip(step_runs, floor_runs))

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


def format_tables(records, args):
    base = next((r for r in records if r['setup'] == 'student'), None)
    lines = [f"{args.images} images of {args.image_size} px, {args.rois} RoIs/image",
             f"{'setup':<8} {'step ms':>9} {'x student':>10} {'floor ms':>9} {'x floor':>8} "
             f"{'peak MB':>9} {'vertices':>9} {'loss ms':>8} {'loss share':>11}"]
    for r in records:
        ratio = f"{r['step_ms'] / base['step_ms']:.2f}" if base else ''
        floor = f"{r['floor_ms']:.1f}" if 'floor_ms' in r else ''
        floor_ratio = f"{r['floor_ratio']:.2f}" if 'floor_ratio' in r else ''
        loss = f"{r['loss_ms']:.1f}" if 'loss_ms' in r else ''
        share = f"{100 * r['loss_share']:.1f}%" if 'loss_share' in r else ''
        lines.append(f"{r['setup']:<8} {r['step_ms']:>9.1f} {ratio:>10} {floor:>9} "
                     f"{floor_ratio:>8} {r['peak_mb']:>9.1f} {r.get('vertices', ''):>9} "
                     f"{loss:>8} {share:>11}")
    for r in records:
        if 'phases' not in r:
            continue
        lines += ['', f"{r['setup']}: median ms per phase ({r['repeats']} steps and floors, "
                  'alternating)', f"{'phase':<22} {'step':>8} {'floor':>8} {'above floor':>12}"]
        for phase in PHASES + ('total',):
            step, floor = r['phases'].get(phase, 0.0), r['floor_phases'].get(phase, 0.0)
            if step or floor:
                lines.append(f'{phase:<22} {step:>8.1f} {floor:>8.1f} {step - floor:>12.1f}')
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--setups', nargs='+', default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument('--rois', type=int, default=512, help='sampled RoIs per image')
    parser.add_argument('--images', type=int, default=2, help='images per batch')
    parser.add_argument('--image-size', type=int, default=320)
    parser.add_argument('--min-repeats', type=int, default=5)
    parser.add_argument('--budget-s', type=float, default=10.0)
    parser.add_argument('--threads', type=int, default=0,
                        help="torch threads per setup (0: torch's default)")
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
                   str(args.min_repeats), '--budget-s', str(args.budget_s),
                   '--threads', str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f'{setup} failed:\n{done.stderr[-2000:]}')
            records.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print(format_tables(records, args))
    if args.json:
        write_records(args.json, records)


if __name__ == '__main__':
    main()
