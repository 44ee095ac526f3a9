"""The two-stage distiller end to end on the toy dataset, through mmengine's runner."""
import os
import os.path as osp
import subprocess
import sys

import mmdet
import pytest
import torch
from conftest import TOY_KD, TOY_STUDENT, TOY_TEACHER, TOY_VRM, toy_config
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader, Runner

from vrm_det.checkpoint import save_student_checkpoint
from vrm_det.registry import MMDET_MODELS


def build_distiller(config, teacher_ckpt, **overrides):
    cfg = Config.fromfile(str(config))
    init_default_scope('mmdet')
    model_cfg = cfg.model
    model_cfg.teacher_ckpt = str(teacher_ckpt)
    model_cfg.update(overrides)
    return MMDET_MODELS.build(model_cfg)


def first_batch(toy_data, work_dir, teacher_ckpt):
    cfg = toy_config(TOY_VRM, toy_data, work_dir, teacher_ckpt=teacher_ckpt)
    loader = Runner.build_dataloader(cfg.train_dataloader)
    return next(iter(loader))


@pytest.fixture(scope='module')
def vrm_run(toy_data, toy_teacher_ckpt, tmp_path_factory):
    """Three VRM iterations through the runner, then its validation."""
    work_dir = tmp_path_factory.mktemp('vrm')
    cfg = toy_config(TOY_VRM, toy_data, work_dir, max_iters=3, teacher_ckpt=toy_teacher_ckpt)
    runner = Runner.from_cfg(cfg)
    student_before = {k: v.clone() for k, v in runner.model.student.state_dict().items()}
    runner.train()
    metrics = runner.val_loop.run()
    return runner, student_before, metrics, work_dir


def test_loss_dict_holds_detection_and_vrm_terms(vrm_run):
    runner = vrm_run[0]
    logged = runner.message_hub.log_scalars
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_vrm_sample',
                'loss_vrm_class', 'vrm_sample_term', 'vrm_class_term', 'kept_fraction',
                'joint_entropy', 'joint_entropy_threshold', 'pruned_foreground_share',
                'distill_grad_norm'):
        assert f'train/{key}' in logged, key
    kept = logged['train/kept_fraction'].current()
    assert 0.9 <= kept <= 0.96  # keep_percentile=95


def test_teacher_frozen_and_student_trained(vrm_run, toy_teacher_ckpt):
    runner, student_before = vrm_run[0], vrm_run[1]
    saved = CheckpointLoader.load_checkpoint(toy_teacher_ckpt)['state_dict']
    for key, value in runner.model.teacher.state_dict().items():
        torch.testing.assert_close(value, saved[key], msg=key)
    changed = [k for k, v in runner.model.student.state_dict().items()
               if v.dtype.is_floating_point and not torch.equal(v, student_before[k])]
    assert any(k.startswith('backbone.') for k in changed)
    assert any(k.startswith('roi_head.') for k in changed)
    assert not runner.model.teacher.training


def test_teacher_is_outside_optimizer_state_dict_and_train_mode(toy_teacher_ckpt):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    teacher_params = {id(p) for p in distiller.teacher.parameters()}
    assert not teacher_params & {id(p) for p in distiller.parameters()}
    assert all(not p.requires_grad for p in distiller.teacher.parameters())
    assert not any(k.startswith('teacher') for k in distiller.state_dict())
    distiller.train()
    assert distiller.student.training and not distiller.teacher.training
    assert not any(m.training for m in distiller.teacher.modules())


def test_teacher_scores_exactly_the_student_rois(toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    distiller.train()
    seen = {'student': [], 'teacher': [], 'teacher_rpn': 0}

    def record(name):
        def hook(module, args, output):
            seen[name].append(args[1].detach().clone())
        return hook

    def rpn_called(module, args, output):
        seen['teacher_rpn'] += 1

    distiller.student.roi_head.bbox_roi_extractor.register_forward_hook(record('student'))
    distiller.teacher.roi_head.bbox_roi_extractor.register_forward_hook(record('teacher'))
    distiller.teacher.rpn_head.register_forward_hook(rpn_called)
    batch = first_batch(toy_data, tmp_path, toy_teacher_ckpt)
    data = distiller.data_preprocessor(batch, True)
    losses = distiller(**data, mode='loss')
    assert len(seen['student']) == len(seen['teacher']) == 1
    student_rois, teacher_rois = seen['student'][0], seen['teacher'][0]
    torch.testing.assert_close(teacher_rois, student_rois, rtol=0, atol=0)
    # Real and virtual halves: the same boxes, the virtual ones on images N..2N-1.
    num_images = len(batch['inputs'])
    real, virtual = student_rois.chunk(2)
    torch.testing.assert_close(virtual[:, 1:], real[:, 1:], rtol=0, atol=0)
    torch.testing.assert_close(virtual[:, 0], real[:, 0] + num_images, rtol=0, atol=0)
    assert seen['teacher_rpn'] == 0
    total, _ = distiller.parse_losses(losses)
    assert torch.isfinite(total)


def test_kd_config_skips_the_virtual_view(toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(TOY_KD, toy_teacher_ckpt)
    distiller.train()
    calls = []
    distiller.virtual_view.register_forward_hook(lambda *args: calls.append(1))
    batch = first_batch(toy_data, tmp_path, toy_teacher_ckpt)
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    assert 'loss_kd' in losses and 'loss_vrm_sample' not in losses and not calls


@pytest.mark.parametrize('vertices, max_vertices', [('foreground', None), ('all', 10)])
def test_vertex_selection(toy_teacher_ckpt, vertices, max_vertices):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, roi_vertices=vertices,
                                max_vertices=max_vertices)
    background = distiller.student.roi_head.bbox_head.num_classes
    labels = torch.tensor([0, 3, background, 1, background] * 4)
    index = distiller.select_vertices(labels)
    if vertices == 'foreground':
        assert torch.equal(index, (labels < background).nonzero(as_tuple=True)[0])
    else:
        assert len(index) == 10 and len(set(index.tolist())) == 10
        assert torch.equal(index, index.sort().values)


@pytest.mark.parametrize('num_foreground, ratio', [(3, 1.0), (3, 2.5), (0, 1.0), (1, 1.0)])
def test_balanced_vertices_keep_every_foreground_roi_and_a_capped_background_sample(
        toy_teacher_ckpt, num_foreground, ratio):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, roi_vertices='balanced',
                                background_ratio=ratio)
    background = distiller.student.roi_head.bbox_head.num_classes
    labels = torch.full((40,), background)
    foreground = torch.randperm(40)[:num_foreground]
    labels[foreground] = torch.arange(num_foreground) % background
    index = distiller.select_vertices(labels)
    chosen_background = [i for i in index.tolist() if labels[i] == background]
    assert set(foreground.tolist()) <= set(index.tolist())
    # ceil(ratio * foreground), and enough for a graph of two vertices
    assert len(chosen_background) == max(-(-ratio * num_foreground // 1), 2 - num_foreground)
    assert torch.equal(index, index.sort().values) and len(set(index.tolist())) == len(index)


def test_background_ratio_without_balanced_vertices_is_refused(toy_teacher_ckpt):
    with pytest.raises(ValueError, match="roi_vertices='balanced' only"):
        build_distiller(TOY_VRM, toy_teacher_ckpt, background_ratio=2.0)


def test_virtual_detection_losses_are_added_when_asked(toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, virtual_det_loss=True)
    distiller.train()
    batch = first_batch(toy_data, tmp_path, toy_teacher_ckpt)
    losses = distiller(**distiller.data_preprocessor(batch, True), mode='loss')
    assert {'loss_cls_virtual', 'loss_bbox_virtual', 'loss_cls', 'loss_bbox'} <= set(losses)


def test_converted_student_evaluates_like_the_distiller(vrm_run, toy_data, tmp_path):
    runner, _, distiller_metrics, work_dir = vrm_run
    student_ckpt = str(tmp_path / 'student.pth')
    save_student_checkpoint(osp.join(work_dir, 'iter_3.pth'), student_ckpt)
    cfg = toy_config(TOY_STUDENT, toy_data, tmp_path / 'test')
    cfg.load_from = student_ckpt
    student_metrics = Runner.from_cfg(cfg).test()
    assert 'coco/bbox_mAP' in student_metrics
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert student_metrics[key] == distiller_metrics[key], key


def test_distiller_training_resumes(vrm_run, toy_data, toy_teacher_ckpt):
    work_dir = vrm_run[3]
    cfg = toy_config(TOY_VRM, toy_data, work_dir, max_iters=4, teacher_ckpt=toy_teacher_ckpt)
    cfg.resume, cfg.load_from = True, osp.join(work_dir, 'iter_3.pth')
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4


def test_mmdet_own_train_tool_runs_the_toy_vrm_config(toy_data, toy_teacher_ckpt, tmp_path):
    tool = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    cfg = toy_config(TOY_VRM, toy_data, tmp_path / 'work', teacher_ckpt=toy_teacher_ckpt)
    config_file = tmp_path / 'vrm_toy.py'
    cfg.dump(str(config_file))
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    done = subprocess.run([sys.executable, tool, str(config_file)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    assert 'loss_vrm_sample' in done.stdout + done.stderr


def test_build_errors_name_the_problem(toy_teacher_ckpt, tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_ckpt .*does not exist'):
        build_distiller(TOY_VRM, tmp_path / 'missing.pth')
    student_ckpt = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1),
                               'unrelated.weight': torch.zeros(1)}}, student_ckpt)
    with pytest.raises(ValueError, match=r'Missing keys: .*Unexpected keys: \[unrelated.*'
                       r'backbone.conv1.weight \(1,\) != \(32, 3, 7, 7\)'):
        build_distiller(TOY_VRM, student_ckpt)
    cfg = Config.fromfile(str(TOY_VRM))
    teacher = Config.fromfile(str(TOY_TEACHER)).model
    teacher.roi_head.bbox_head.num_classes = 7
    with pytest.raises(ValueError, match='teacher predicts 7 classes and the student 5'):
        build_distiller(TOY_VRM, toy_teacher_ckpt, teacher=teacher)
    with pytest.raises(ValueError, match='needs the virtual view'):
        build_distiller(TOY_VRM, toy_teacher_ckpt, virtual_view=None)
    with pytest.raises(ValueError, match="roi_vertices='some'"):
        build_distiller(TOY_VRM, toy_teacher_ckpt, roi_vertices='some')
    assert cfg.model.type == 'TwoStageDistiller'


def test_empty_batch_is_a_clear_error(toy_teacher_ckpt):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    with pytest.raises(ValueError, match='empty batch'):
        distiller.loss(torch.zeros(0, 3, 128, 128), [])


def test_virtual_view_leaves_batch_norm_running_statistics_alone(toy_data, toy_teacher_ckpt,
                                                                 tmp_path):
    vrm = build_distiller(TOY_VRM, toy_teacher_ckpt)
    vrm.train()
    assert not vrm._batch_norm_frozen()  # the toy student trains its batch-norm
    batch = vrm.data_preprocessor(first_batch(toy_data, tmp_path, toy_teacher_ckpt), True)
    bn = vrm.student.backbone.bn1
    before = bn.running_mean.clone()
    with torch.no_grad():
        vrm.student.extract_feat(batch['inputs'])
        real_only = bn.running_mean.clone()
        bn.running_mean.copy_(before)
        vrm.student_features(batch['inputs'], vrm.make_virtual_inputs(batch['inputs']))
    torch.testing.assert_close(bn.running_mean, real_only)
    assert bn.momentum == 0.1
