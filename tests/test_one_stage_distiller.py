"""The one-stage (RetinaNet) distiller on the toy dataset, against separate
forward passes of the teacher and the student computed here."""
import math
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import toy_config
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from vrm_det.models.distillers.base_distiller import _teacher_model_config
from vrm_det.registry import MMDET_MODELS

RETINA = Path(__file__).parents[1] / 'configs' / 'toy' / 'retinanet'
TEACHER = RETINA / 'retinanet_r18-w32_fpn_toy.py'
STUDENT = RETINA / 'retinanet_r18-w8_fpn_toy.py'
VRM = RETINA / 'vrm_retinanet_r18-w32-w8_fpn_toy.py'
KD = RETINA / 'kd_retinanet_r18-w32-w8_fpn_toy.py'
NUM_CLASSES = 5


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    """The toy RetinaNet teacher at its initialisation (prior-probability bias
    included): the tests compare computations, not accuracy."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    teacher = MMDET_MODELS.build(_teacher_model_config(str(TEACHER)))
    teacher.init_weights()
    path = tmp_path_factory.mktemp('retina_teacher') / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, path)
    return str(path)


def build_distiller(teacher_ckpt, config=VRM, **overrides):
    init_default_scope('mmdet')
    model_cfg = Config.fromfile(str(config)).model
    model_cfg.teacher_ckpt = str(teacher_ckpt)
    for key, value in overrides.items():  # replaced, not merged
        model_cfg[key] = value
    distiller = MMDET_MODELS.build(model_cfg)
    distiller.init_weights()
    distiller.train()
    return distiller


@pytest.fixture(scope='module')
def batch(toy_data, teacher_ckpt, tmp_path_factory):
    cfg = toy_config(VRM, toy_data, tmp_path_factory.mktemp('loader'), teacher_ckpt=teacher_ckpt)
    return next(iter(Runner.build_dataloader(cfg.train_dataloader)))


def traced_step(distiller, batch):
    """One loss step, recording the virtual images, the vertex indices, what
    the distillation loss received and what mmdet's classification loss got."""
    seen = dict(loss_targets=[])
    make_virtual, select = distiller.make_virtual_inputs, distiller.select_vertices

    def record_virtual(*args, **kwargs):
        seen['virtual'] = make_virtual(*args, **kwargs)
        return seen['virtual']

    def record_vertices(*args, **kwargs):
        seen['index'] = select(*args, **kwargs)
        return seen['index']

    def record_distill(module, args, kwargs, output):
        seen.update({k: v.detach() for k, v in kwargs.items() if v is not None})

    def record_loss_targets(module, args, kwargs, output):
        # mmdet's loss_by_feat_single: loss_cls(cls_score, labels, label_weights, ...)
        seen['loss_targets'].append((args[1].clone(), args[2].clone()))

    distiller.make_virtual_inputs, distiller.select_vertices = record_virtual, record_vertices
    handles = [
        distiller.distill_loss.register_forward_hook(record_distill, with_kwargs=True),
        distiller.student.bbox_head.loss_cls.register_forward_hook(record_loss_targets,
                                                                  with_kwargs=True)]
    data = distiller.data_preprocessor(batch, True)
    try:
        losses = distiller(**data, mode='loss')
    finally:
        for handle in handles:
            handle.remove()
        del distiller.make_virtual_inputs, distiller.select_vertices
    return data, losses, seen


def flat_anchor_logits(model, images):
    """(N * A, C): every anchor's class logits from a plain forward of
    ``model`` on ``images``, flattened as mmdet's loss flattens them."""
    cls_scores = model.bbox_head(model.extract_feat(images))[0]
    per_image = [s.permute(0, 2, 3, 1).reshape(len(images), -1, NUM_CLASSES)
                 for s in cls_scores]
    return torch.cat(per_image, 1).flatten(0, 1)


def with_background(logits):
    return torch.cat([logits, torch.zeros(len(logits), 1)], 1)


def loss_assignment(seen, num_images):
    """Labels and counted flags per anchor, (N * A,), as mmdet's loss saw them
    (its per-level tensors are image-major within each level)."""
    labels = torch.cat([lab.view(num_images, -1) for lab, _ in seen['loss_targets']], 1)
    weights = torch.cat([w.view(num_images, -1) for _, w in seen['loss_targets']], 1)
    return labels.flatten(), weights.flatten() > 0


def test_four_logit_matrices_equal_separate_forward_passes(teacher_ckpt, batch):
    distiller = build_distiller(teacher_ckpt)
    data, _, seen = traced_step(distiller, batch)
    real, virtual, index = data['inputs'], seen['virtual'], seen['index']
    assert not torch.equal(real, virtual)
    with torch.no_grad():
        # Each view alone: the student normalises each with its own batch statistics.
        expected = dict(
            student_logits=flat_anchor_logits(distiller.student, real)[index],
            student_virtual_logits=flat_anchor_logits(distiller.student, virtual)[index],
            teacher_logits=flat_anchor_logits(distiller.teacher, real)[index],
            teacher_virtual_logits=flat_anchor_logits(distiller.teacher, virtual)[index])
    for name, logits in expected.items():
        assert seen[name].shape == (len(index), NUM_CLASSES + 1), name
        torch.testing.assert_close(seen[name], with_background(logits), msg=name)
    labels, _ = loss_assignment(seen, len(real))
    torch.testing.assert_close(seen['labels'], labels[index])


@pytest.mark.parametrize('negative_ratio, cap', [(3.0, None), (1.0, 'loose'),
                                                  (50.0, 'negatives'), (3.0, 'positives')])
def test_vertices_are_every_positive_anchor_and_capped_negatives(
        teacher_ckpt, batch, negative_ratio, cap):
    distiller = build_distiller(teacher_ckpt, negative_ratio=negative_ratio, max_vertices=None)
    data, _, seen = traced_step(distiller, batch)
    labels, counted = loss_assignment(seen, len(data['inputs']))
    positives = set((counted & (labels < NUM_CLASSES)).nonzero().flatten().tolist())
    negatives = set((counted & (labels == NUM_CLASSES)).nonzero().flatten().tolist())
    assert len(positives) > 4
    # The cap binds nothing, the negatives, or the positives too.
    distiller.max_vertices = dict(loose=100000, negatives=len(positives) + 5,
                                  positives=len(positives) // 2).get(cap)
    index = traced_step(distiller, batch)[2]['index'].tolist()
    assert len(set(index)) == len(index) and index == sorted(index)
    if cap == 'positives':  # only then are positives dropped: a random subset
        assert len(index) == len(positives) // 2 and set(index) <= positives
        return
    assert positives <= set(index)
    chosen_negatives = set(index) - positives
    assert chosen_negatives <= negatives  # never an ignored or outside anchor
    expected = dict(negatives=5).get(cap, math.ceil(negative_ratio * len(positives)))
    assert len(chosen_negatives) == expected


def test_teacher_on_other_anchors_is_refused(teacher_ckpt, batch):
    teacher = Config.fromfile(str(TEACHER)).model
    teacher.bbox_head.anchor_generator.ratios = [1.0]
    with pytest.raises(ValueError, match=r'different anchors \(.*ratios.*anchors_per_location: '
                                         r'student 9, teacher 3'):
        build_distiller(teacher_ckpt, teacher=teacher)
    teacher = Config.fromfile(str(TEACHER)).model
    teacher.bbox_head.anchor_generator.strides = [4, 8, 16, 32, 64]
    with pytest.raises(ValueError, match='different anchors .*strides'):
        build_distiller(teacher_ckpt, teacher=teacher)
    teacher = Config.fromfile(str(TEACHER)).model
    teacher.bbox_head.num_classes = 7
    with pytest.raises(ValueError, match='teacher predicts 7 classes and the student 5'):
        build_distiller(teacher_ckpt, teacher=teacher)
    faster_rcnn = Path(__file__).parents[1] / 'configs' / 'toy' / 'faster-rcnn_r18-w32_fpn_toy.py'
    with pytest.raises(TypeError, match='teacher .*is not a one-stage detector'):
        build_distiller(teacher_ckpt, teacher=str(faster_rcnn))
    # Same anchors, other output maps: the teacher pads to 256, the student to 32.
    teacher = Config.fromfile(str(TEACHER)).model
    teacher.data_preprocessor.pad_size_divisor = 256
    distiller = build_distiller(teacher_ckpt, teacher=teacher)
    with pytest.raises(ValueError, match=r"teacher's head output maps have sizes \[\(32, 32\)"):
        distiller(**distiller.data_preprocessor(batch, True), mode='loss')


def test_distillation_gradient_reaches_the_classification_branch_only(teacher_ckpt, batch):
    distiller = build_distiller(teacher_ckpt)
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    distill_loss = losses['loss_vrm_sample'] + losses['loss_vrm_class']
    named = dict(distiller.student.named_parameters())
    grads = dict(zip(named, torch.autograd.grad(distill_loss, list(named.values()),
                                                allow_unused=True)))

    def reached(prefix):
        return [n for n, g in grads.items()
                if n.startswith(prefix) and g is not None and g.abs().sum() > 0]

    assert not reached('bbox_head.reg_convs') and not reached('bbox_head.retina_reg')
    for prefix in ('bbox_head.retina_cls', 'bbox_head.cls_convs', 'neck', 'backbone'):
        assert reached(prefix), prefix
    assert not any(p.requires_grad or p.grad is not None for p in distiller.teacher.parameters())


def test_losses_views_and_logit_rows(teacher_ckpt, batch):
    distiller = build_distiller(teacher_ckpt, virtual_det_loss=True)
    _, losses, seen = traced_step(distiller, batch)
    assert {'loss_cls', 'loss_bbox', 'loss_cls_virtual', 'loss_bbox_virtual',
            'loss_vrm_sample', 'loss_vrm_class', 'kept_fraction'} <= set(losses)
    assert distiller.distill_loss.background_label == NUM_CLASSES
    # The same targets on both views: the photometric view moves no box.
    (real_labels, _), (virtual_labels, _) = seen['loss_targets'][0], seen['loss_targets'][5]
    assert torch.equal(real_labels, virtual_labels)
    assert not torch.equal(losses['loss_cls'][0], losses['loss_cls_virtual'][0])

    kd = build_distiller(teacher_ckpt, config=KD)
    calls = []
    kd.virtual_view.register_forward_hook(lambda *args: calls.append(1))
    _, losses, seen = traced_step(kd, batch)
    assert 'loss_kd' in losses and not calls and 'student_virtual_logits' not in seen

    classes = build_distiller(teacher_ckpt, logit_row='classes')
    _, _, seen = traced_step(classes, batch)
    assert seen['student_logits'].shape[1] == NUM_CLASSES
    with pytest.raises(ValueError, match="DKDLoss reads each row's class"):
        build_distiller(teacher_ckpt, logit_row='classes', distill_loss=dict(type='DKDLoss'))
    with pytest.raises(ValueError, match="logit_row='sigmoid' is not supported"):
        build_distiller(teacher_ckpt, logit_row='sigmoid')
    with pytest.raises(TypeError, match='anchors are not projected'):
        build_distiller(teacher_ckpt, virtual_view=dict(type='DetectionPipelineView'))


def test_converted_student_evaluates_like_the_distiller(toy_data, teacher_ckpt, tmp_path):
    cfg = toy_config(VRM, toy_data, tmp_path / 'vrm', max_iters=3, teacher_ckpt=teacher_ckpt)
    runner = Runner.from_cfg(cfg)
    runner.train()
    distiller_metrics = runner.val_loop.run()
    student_ckpt = tmp_path / 'student.pth'
    tool = Path(__file__).parents[1] / 'tools' / 'convert_to_student.py'
    done = subprocess.run([sys.executable, str(tool), osp.join(tmp_path, 'vrm', 'iter_3.pth'),
                           str(student_ckpt)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    student_cfg = toy_config(STUDENT, toy_data, tmp_path / 'student')
    student_cfg.load_from = str(student_ckpt)
    student_runner = Runner.from_cfg(student_cfg)
    student_metrics = student_runner.test()
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert student_metrics[key] == distiller_metrics[key], key
    # AP after three iterations may be zero for both: compare the detections too.
    data = next(iter(student_runner.test_dataloader))
    with torch.no_grad():
        ours = runner.model.val_step(data)
        plain = student_runner.model.val_step(data)
    assert type(student_runner.model).__name__ == 'RetinaNet'
    for a, b in zip(ours, plain):
        assert len(a.pred_instances) > 0
        torch.testing.assert_close(a.pred_instances.bboxes, b.pred_instances.bboxes)
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)
