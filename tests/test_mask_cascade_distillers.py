"""Mask R-CNN (TwoStageDistiller) and Cascade R-CNN (CascadeDistiller) on the
toy dataset: what the losses receive against separate forward passes, where
the distillation gradient goes, the student's own losses against mmdet's, and
the converted student in plain mmdet."""
import json
import os.path as osp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, toy_config
from mmdet.registry import MODELS as MMDET_OWN_MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from pycocotools import mask as mask_utils
from test_detection_distiller import build_distiller

from vrm_det.models.distillers.base_distiller import _teacher_model_config
from vrm_det.registry import MMDET_MODELS

ROOT = Path(__file__).parents[1]
MASK = CONFIGS / 'toy' / 'mask_rcnn'
CASCADE = CONFIGS / 'toy' / 'cascade_rcnn'
MASK_VRM = MASK / 'vrm_mask-rcnn_r18-w32-w8_fpn_toy.py'
CASCADE_VRM = CASCADE / 'vrm_cascade-rcnn_r18-w32-w8_fpn_toy.py'
PATHS = {'mask': (MASK_VRM, MASK / 'mask-rcnn_r18-w8_fpn_toy.py'),
         'cascade': (CASCADE_VRM, CASCADE / 'cascade-rcnn_r18-w8_fpn_toy.py')}


@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """A randomly initialised teacher checkpoint per detector (the tests
    compare computations, not accuracy)."""
    init_default_scope('mmdet')
    paths = {}
    for name, (vrm, _) in PATHS.items():
        torch.manual_seed(0)
        teacher = MMDET_MODELS.build(_teacher_model_config(str(Config.fromfile(
            str(vrm)).model.teacher)))
        paths[name] = str(tmp_path_factory.mktemp(f'{name}_teacher') / 'teacher.pth')
        torch.save({'state_dict': teacher.state_dict()}, paths[name])
    return paths


def build(name, teacher_ckpts, **overrides):
    torch.manual_seed(0)
    distiller = build_distiller(PATHS[name][0], teacher_ckpts[name], **overrides)
    distiller.train()
    return distiller


def train_batch(name, toy_data, tmp_path, distiller):
    cfg = toy_config(PATHS[name][0], toy_data, tmp_path)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    return distiller.data_preprocessor(batch, True)


def roi_extractors(detector):
    """The bbox RoI extractor of each stage (one for a StandardRoIHead)."""
    extractor = detector.roi_head.bbox_roi_extractor
    return list(extractor) if isinstance(extractor, torch.nn.ModuleList) else [extractor]


def bbox_forward(detector, stage, feats, rois):
    head = detector.roi_head
    return (head._bbox_forward(feats, rois) if len(roi_extractors(detector)) == 1
            else head._bbox_forward(stage, feats, rois))


def reseeding(seed):
    """A forward pre-hook that reseeds torch (and leaves the inputs alone)."""
    def hook(module, args):
        torch.manual_seed(seed)
    return hook


class Recorder:
    """Records, during one ``distiller.loss``: the RoIs each stage's extractor
    pools, the virtual batch, and every call of the distillation loss; and
    reseeds torch when the student's RPN runs, so that the RoI samplers draw
    the same numbers as in a separate run of mmdet's own loss."""

    def __init__(self, distiller, seed=7):
        self.rois, self.calls, self.handles = {'student': {}, 'teacher': {}}, [], []
        self.handles.append(distiller.student.rpn_head.register_forward_pre_hook(
            reseeding(seed)))
        for model in ('student', 'teacher'):
            for stage, extractor in enumerate(roi_extractors(getattr(distiller, model))):
                self.handles.append(extractor.register_forward_hook(self._rois(model, stage)))
        self.handles.append(distiller.distill_loss.register_forward_hook(
            self._distill_call, with_kwargs=True))
        make_virtual = distiller.make_virtual_inputs

        def recording(*args, **kwargs):
            self.virtual = make_virtual(*args, **kwargs)
            return self.virtual
        distiller.make_virtual_inputs = recording

    def _rois(self, model, stage):
        def hook(module, args, output):
            self.rois[model].setdefault(stage, []).append(args[1].detach().clone())
        return hook

    def _distill_call(self, module, args, kwargs, output):
        self.calls.append(dict(kwargs, output=output))

    def remove(self):
        for handle in self.handles:
            handle.remove()


def mmdet_own_run(student, data, seed=7):
    """mmdet's own training loss of ``student`` on the real images, and the
    RoIs each stage pooled (the RPN reseeded as in :class:`Recorder`)."""
    rois, handles = {}, []
    handles.append(student.rpn_head.register_forward_pre_hook(reseeding(seed)))
    def recording(stage):
        def hook(module, args, output):
            rois.setdefault(stage, args[1].detach().clone())
        return hook

    for stage, extractor in enumerate(roi_extractors(student)):
        handles.append(extractor.register_forward_hook(recording(stage)))
    try:
        with torch.no_grad():
            losses = student.loss(data['inputs'], data['data_samples'])
    finally:
        for handle in handles:
            handle.remove()
    return losses, rois


@pytest.mark.parametrize('name', ['mask', 'cascade'])
def test_four_logit_matrices_equal_separate_forward_passes(name, teacher_ckpts, toy_data,
                                                          tmp_path):
    """Per stage: the stage's RoIs are those mmdet's own RoI head samples (a
    cascade's refined by the previous stage), and the student and teacher
    logits on both views equal each network run alone on those RoIs."""
    distiller = build(name, teacher_ckpts)
    data = train_batch(name, toy_data, tmp_path, distiller)
    recorder = Recorder(distiller)
    distiller.loss(**data)
    recorder.remove()
    _, own_rois = mmdet_own_run(distiller.student, data)
    stages = len(roi_extractors(distiller.student))
    assert len(recorder.calls) == stages  # one graph per stage

    inputs, virtual = data['inputs'], recorder.virtual
    assert not torch.equal(virtual, inputs)
    student, teacher = distiller.student, distiller.teacher
    with torch.no_grad():
        feats = {('student', 'real'): student.extract_feat(inputs),
                 ('student', 'virtual'): student.extract_feat(virtual),
                 ('teacher', 'real'): teacher.extract_feat(inputs),
                 ('teacher', 'virtual'): teacher.extract_feat(virtual)}
    for stage, call in enumerate(recorder.calls):
        (pooled, ), (teacher_pooled, ) = (recorder.rois[model][stage]
                                          for model in ('student', 'teacher'))
        rois = own_rois[stage]
        torch.testing.assert_close(pooled[:len(rois)], rois, rtol=0, atol=0)
        torch.testing.assert_close(teacher_pooled, pooled, rtol=0, atol=0)
        for model, detector in (('student', student), ('teacher', teacher)):
            for view in ('real', 'virtual'):
                with torch.no_grad():
                    expected = bbox_forward(detector, stage, feats[(model, view)],
                                            rois)['cls_score']
                key = f'{model}_logits' if view == 'real' else f'{model}_virtual_logits'
                torch.testing.assert_close(call[key], expected, rtol=1e-4, atol=1e-5,
                                           msg=f'stage {stage} {key}')
        assert not call['teacher_logits'].requires_grad
        assert not call['teacher_virtual_logits'].requires_grad


@pytest.mark.parametrize('name', ['mask', 'cascade'])
def test_detection_losses_equal_mmdet_own(name, teacher_ckpts, toy_data, tmp_path):
    """The student's own losses (RPN, every stage's bbox losses with mmdet's
    stage weights, the mask loss) are mmdet's own loss of the student, and each
    stage's distillation losses are the loss on that stage's logits times the
    stage weight."""
    distiller = build(name, teacher_ckpts)
    data = train_batch(name, toy_data, tmp_path, distiller)
    recorder = Recorder(distiller)
    losses = distiller.loss(**data)
    recorder.remove()
    own, _ = mmdet_own_run(distiller.student, data)
    def total(value):
        return sum(value) if isinstance(value, list) else value  # RPN: one per level

    for key, value in own.items():
        if 'loss' in key:
            torch.testing.assert_close(total(losses[key]).detach(), total(value),
                                       rtol=1e-4, atol=1e-6, msg=key)
    if name == 'mask':
        assert 'loss_mask' in own
    else:
        stage_weights = distiller.student.roi_head.stage_loss_weights
        warmup = distiller.distill_weight()
        for stage, call in enumerate(recorder.calls):
            inputs = {k: v for k, v in call.items() if k != 'output'}
            with torch.no_grad():
                alone = distiller.distill_loss(**inputs)
            for key in ('loss_vrm_sample', 'loss_vrm_class'):
                torch.testing.assert_close(losses[f's{stage}.{key}'].detach(),
                                           alone[key] * warmup * stage_weights[stage],
                                           msg=f's{stage}.{key}')
        assert not any(k.startswith('loss_vrm') for k in losses)


def distill_gradients(distiller, data):
    """Gradients of the distillation losses alone, by parameter name."""
    distiller.zero_grad()
    losses = distiller.loss(**data)
    distilled = [v for k, v in losses.items() if 'loss_vrm' in k]
    assert distilled
    sum(distilled).backward()
    return {name: p.grad for name, p in distiller.student.named_parameters()}


def has_gradient(grads, prefix):
    found = [g for name, g in grads.items() if name.startswith(prefix)]
    assert found, prefix
    return any(g is not None and bool(g.abs().sum() > 0) for g in found)


@pytest.mark.parametrize('name', ['mask', 'cascade'])
def test_distill_gradient_reaches_the_classification_branch_only(name, teacher_ckpts,
                                                                 toy_data, tmp_path):
    distiller = build(name, teacher_ckpts)
    grads = distill_gradients(distiller, train_batch(name, toy_data, tmp_path, distiller))
    heads = (['roi_head.bbox_head.'] if name == 'mask'
             else [f'roi_head.bbox_head.{k}.' for k in range(3)])
    for head in heads:
        assert has_gradient(grads, head + 'fc_cls.'), head
        assert has_gradient(grads, head + 'shared_fcs.'), head
        assert not has_gradient(grads, head + 'fc_reg.'), head
    assert has_gradient(grads, 'backbone.') and has_gradient(grads, 'neck.')
    assert not has_gradient(grads, 'rpn_head.')
    if name == 'mask':
        assert not has_gradient(grads, 'roi_head.mask_head.')
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_last_stage_option_distils_the_last_stage_only(teacher_ckpts, toy_data, tmp_path):
    distiller = build('cascade', teacher_ckpts, distill_stages='last')
    data = train_batch('cascade', toy_data, tmp_path, distiller)
    grads = distill_gradients(distiller, data)
    assert has_gradient(grads, 'roi_head.bbox_head.2.fc_cls.')
    assert not has_gradient(grads, 'roi_head.bbox_head.0.')
    assert not has_gradient(grads, 'roi_head.bbox_head.1.')
    losses = distiller.loss(**data)
    assert {k for k in losses if 'vrm' in k and k.startswith('s')} == {
        's2.loss_vrm_sample', 's2.loss_vrm_class', 's2.vrm_sample_term', 's2.vrm_class_term'}
    assert {'s0.loss_cls', 's1.loss_cls', 's2.loss_cls'} <= set(losses)


def test_mask_loss_trains_the_mask_head_on_both_views(teacher_ckpts, toy_data, tmp_path):
    distiller = build('mask', teacher_ckpts, virtual_det_loss=True)
    data = train_batch('mask', toy_data, tmp_path, distiller)
    recorder = Recorder(distiller)
    sample_rois, sampled = distiller._sample_rois, []
    distiller._sample_rois = lambda *args, **kwargs: sampled.append(
        sample_rois(*args, **kwargs)) or sampled[-1]
    try:
        losses = distiller.loss(**data)
    finally:
        recorder.remove()
        del distiller._sample_rois
    real, virtual = losses['loss_mask'], losses['loss_mask_virtual']
    assert torch.isfinite(real) and torch.isfinite(virtual) and real != virtual
    # Each view's loss is mmdet's mask loss on that view's own features, at the
    # sampled RoIs (the mask head pools its positives with its own extractor).
    student, gt = distiller.student, [s.gt_instances for s in data['data_samples']]
    assert not student.roi_head.share_roi_extractor
    with torch.no_grad():
        for images, value in ((data['inputs'], real), (recorder.virtual, virtual)):
            want = student.roi_head.mask_loss(student.extract_feat(images), sampled[0], None,
                                              gt)['loss_mask']['loss_mask']
            torch.testing.assert_close(value.detach(), want, rtol=1e-4, atol=1e-5)
    for key in ('loss_mask', 'loss_mask_virtual'):
        distiller.zero_grad()
        losses[key].backward(retain_graph=True)
        grads = {n: p.grad for n, p in distiller.student.named_parameters()}
        assert has_gradient(grads, 'roi_head.mask_head.conv_logits.'), key
        assert not has_gradient(grads, 'roi_head.bbox_head.'), key


def test_cascade_virtual_detection_losses_per_stage(teacher_ckpts, toy_data, tmp_path):
    """virtual_det_loss: each stage's classification loss on the virtual view
    is the cross-entropy of the virtual logits on the stage's RoIs against the
    stage's labels, weighted by the stage weight."""
    distiller = build('cascade', teacher_ckpts, virtual_det_loss=True)
    data = train_batch('cascade', toy_data, tmp_path, distiller)
    recorder = Recorder(distiller)
    losses = distiller.loss(**data)
    recorder.remove()
    student = distiller.student
    with torch.no_grad():
        feats = student.extract_feat(recorder.virtual)
    for stage, call in enumerate(recorder.calls):  # roi_vertices='all': every RoI, in order
        pooled = recorder.rois['student'][stage][0]
        with torch.no_grad():
            scores = bbox_forward(student, stage, feats, pooled[:len(pooled) // 2])['cls_score']
        expected = torch.nn.functional.cross_entropy(scores, call['labels'])
        weight = student.roi_head.stage_loss_weights[stage]
        torch.testing.assert_close(losses[f's{stage}.loss_cls_virtual'].detach(),
                                   weight * expected, rtol=1e-4, atol=1e-6)
        assert torch.isfinite(losses[f's{stage}.loss_bbox_virtual'])


def test_build_errors_name_the_problem(teacher_ckpts):
    cascade_teacher = Config.fromfile(str(CASCADE / 'cascade-rcnn_r18-w32_fpn_toy.py')).model
    two_stages = cascade_teacher.copy()
    two_stages.roi_head = dict(cascade_teacher.roi_head, num_stages=2,
                               stage_loss_weights=[1, 0.5],
                               bbox_head=cascade_teacher.roi_head.bbox_head[:2])
    two_stages.train_cfg = dict(cascade_teacher.train_cfg,
                                rcnn=cascade_teacher.train_cfg.rcnn[:2])
    with pytest.raises(ValueError, match='teacher has 2 cascade stages and the student 3'):
        build('cascade', teacher_ckpts, teacher=two_stages)
    with pytest.raises(ValueError, match=r'distill_stage_weights=\[1.0, 1.0\] has 2 weights '
                       'for 3 stages'):
        build('cascade', teacher_ckpts, distill_stage_weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="distill_stages='first'"):
        build('cascade', teacher_ckpts, distill_stages='first')
    faster = str(CONFIGS / 'toy' / 'faster-rcnn_r18-w32_fpn_toy.py')
    with pytest.raises(TypeError, match="teacher has a single-stage RoI head.*"
                       "type='TwoStageDistiller'"):
        build('cascade', teacher_ckpts, teacher=faster)
    with pytest.raises(TypeError, match="student has a multi-stage RoI head.*"
                       "type='CascadeDistiller'"):
        build('mask', teacher_ckpts,
              student=Config.fromfile(str(CASCADE / 'cascade-rcnn_r18-w8_fpn_toy.py')).model)
    cascade_mask = Config.fromfile(str(CASCADE / 'cascade-rcnn_r18-w8_fpn_toy.py')).model
    mask_head = Config.fromfile(str(MASK / 'mask-rcnn_r18-w8_fpn_toy.py')).model.roi_head
    cascade_mask.roi_head.update(mask_roi_extractor=mask_head.mask_roi_extractor,
                                 mask_head=mask_head.mask_head)
    with pytest.raises(TypeError, match='student is a Cascade Mask R-CNN'):
        build('cascade', teacher_ckpts, student=cascade_mask)
    with pytest.raises(ValueError, match='gather_vertices is not supported by CascadeDistiller'):
        build('cascade', teacher_ckpts, gather_vertices=True)


def test_toy_masks_are_the_drawn_shapes_inside_their_boxes(toy_data):
    coco = json.load(open(toy_data / 'annotations' / 'instances_train.json'))
    names = {c['id']: c['name'] for c in coco['categories']}
    centres = {}
    for ann in coco['annotations']:
        mask = mask_utils.decode(ann['segmentation'])
        x, y, w, h = ann['bbox']
        ys, xs = np.nonzero(mask)
        assert len(xs) and xs.min() >= x and ys.min() >= y
        assert xs.max() < x + w and ys.max() < y + h
        assert mask.sum() < w * h or names[ann['category_id']] == 'square'
        centres.setdefault(names[ann['category_id']], []).append(
            mask[y + h // 2, x + w // 2])
    # A ring's centre is its hole; a disc's is filled (unless a later shape covers it).
    assert centres['ring'] and not any(centres['ring'])
    assert np.mean(centres['disc']) > 0.8


@pytest.mark.parametrize('name', ['mask', 'cascade'])
def test_converted_student_loads_in_plain_mmdet_and_evaluates_alike(name, teacher_ckpts,
                                                                   toy_data, tmp_path):
    vrm_config, student_config = PATHS[name]
    cfg = toy_config(vrm_config, toy_data, tmp_path / 'vrm', max_iters=2,
                     teacher_ckpt=teacher_ckpts[name])
    runner = Runner.from_cfg(cfg)
    runner.train()
    distiller_metrics = runner.val_loop.run()
    logged = runner.message_hub.log_scalars
    stats = set()
    for line in open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')):
        stats |= set(json.loads(line))
    if name == 'cascade':
        assert {'train/s0.loss_vrm_sample', 'train/s2.loss_vrm_class'} <= set(logged)
        assert 'distill/s1.kept_fraction' in stats
    else:
        assert {'train/loss_vrm_sample', 'train/loss_mask'} <= set(logged)
        assert 'distill/kept_fraction' in stats

    student_ckpt = str(tmp_path / 'student.pth')
    done = subprocess.run([sys.executable, str(ROOT / 'tools' / 'convert_to_student.py'),
                           str(tmp_path / 'vrm' / 'iter_2.pth'), student_ckpt],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    student_cfg = toy_config(student_config, toy_data, tmp_path / 'student')
    init_default_scope('mmdet')
    plain = MMDET_OWN_MODELS.build(student_cfg.model)  # mmdet's registry, not ours
    load_checkpoint(plain, student_ckpt, map_location='cpu', strict=True)
    plain.eval()
    runner.model.eval()
    batch = next(iter(runner.val_dataloader))
    with torch.no_grad():
        ours = runner.model.test_step(batch)
        theirs = plain.test_step(batch)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
        if name == 'mask':
            assert torch.equal(a.pred_instances.masks, b.pred_instances.masks)

    student_cfg.load_from = student_ckpt
    student_metrics = Runner.from_cfg(student_cfg).test()
    keys = ['coco/bbox_mAP', 'coco/bbox_mAP_50'] + (
        ['coco/segm_mAP', 'coco/segm_mAP_50'] if name == 'mask' else [])
    for key in keys:
        assert student_metrics[key] == distiller_metrics[key], key
