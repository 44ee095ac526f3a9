"""The virtual path of the detection distiller against independent computations:
the four logit matrices, the virtual detection losses, where the distillation
gradient goes, the padding, and non-finite logits."""
import pytest
import torch
import torch.nn.functional as F
from conftest import TOY_VRM
from mmengine.logging import MessageHub
from test_detection_distiller import build_distiller, first_batch

# Deterministic virtual view (solarize has no random sign): the test can make
# the same virtual images itself.
SOLARIZE = dict(type='PhotometricRandAugment', num_ops=1, magnitude=0.5, ops=('solarize',))


def solarized(inputs, data_samples, preprocessor):
    """The virtual batch made independently: solarize each image's valid region
    in RGB [0, 1] at threshold 0.5, renormalise, leave the padding alone."""
    mean, std = preprocessor.mean, preprocessor.std
    out = inputs.clone()
    for i, sample in enumerate(data_samples):
        h, w = sample.metainfo['img_shape'][:2]
        rgb = (inputs[i, :, :h, :w] * std + mean) / 255
        rgb = torch.where(rgb >= 0.5, 1 - rgb, rgb)
        out[i, :, :h, :w] = (rgb * 255 - mean) / std
    return out


def roi_outputs(model, images, rois):
    """cls_score and bbox_pred of ``model`` for ``rois`` on ``images``, from
    the backbone, neck, RoI extractor and bbox head called one by one."""
    feats = model.extract_feat(images)
    extractor = model.roi_head.bbox_roi_extractor
    return model.roi_head.bbox_head(extractor(feats[:extractor.num_inputs], rois))


def run_recorded(distiller, data):
    """One loss computation; records the RoIs, the sampling results and the
    kwargs the distillation loss receives."""
    seen = {}

    def on_rois(module, args, output):
        seen.setdefault('rois', args[1].detach().clone())

    def on_loss(module, args, kwargs, output):
        seen['distill'] = {k: v.detach() for k, v in kwargs.items() if v is not None}

    sample_rois = distiller._sample_rois

    def record_sampling(*args):
        seen['sampling'] = sample_rois(*args)
        return seen['sampling']

    distiller._sample_rois = record_sampling
    handles = [distiller.student.roi_head.bbox_roi_extractor.register_forward_hook(on_rois),
               distiller.distill_loss.register_forward_hook(on_loss, with_kwargs=True)]
    try:
        losses = distiller.loss(data['inputs'], data['data_samples'])
    finally:
        for handle in handles:
            handle.remove()
        del distiller._sample_rois
    num_rois = len(seen['rois']) // 2
    seen['rois'] = seen['rois'][:num_rois]  # the real half; the virtual half repeats it
    return losses, seen


@pytest.fixture
def solarize_run(toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, virtual_view=SOLARIZE,
                                virtual_det_loss=True)
    distiller.train()
    data = distiller.data_preprocessor(first_batch(toy_data, tmp_path, toy_teacher_ckpt), True)
    losses, seen = run_recorded(distiller, data)
    return distiller, data, losses, seen


def test_four_logit_matrices_equal_separate_forward_passes(solarize_run):
    """Student and teacher run separately on the real and on the independently
    made virtual images, scoring the recorded RoIs."""
    distiller, data, _, seen = solarize_run
    inputs, samples = data['inputs'], data['data_samples']
    virtual = solarized(inputs, samples, distiller.data_preprocessor)
    assert not torch.allclose(virtual, inputs)
    rois = seen['rois']
    with torch.no_grad():
        want = {
            'student_logits': roi_outputs(distiller.student, inputs, rois)[0],
            'student_virtual_logits': roi_outputs(distiller.student, virtual, rois)[0],
            'teacher_logits': roi_outputs(distiller.teacher, inputs, rois)[0],
            'teacher_virtual_logits': roi_outputs(distiller.teacher, virtual, rois)[0],
        }
    got = seen['distill']
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-4, msg=key)
    # The views differ enough that swapping them could not pass the check above.
    for model in ('student', 'teacher'):
        gap = (want[f'{model}_logits'] - want[f'{model}_virtual_logits']).abs().max()
        assert gap > 1e-2, model


def test_virtual_detection_losses_equal_losses_on_the_virtual_outputs(solarize_run):
    distiller, data, losses, seen = solarize_run
    virtual = solarized(data['inputs'], data['data_samples'], distiller.data_preprocessor)
    with torch.no_grad():
        cls_score, bbox_pred = roi_outputs(distiller.student, virtual, seen['rois'])
    bbox_head = distiller.student.roi_head.bbox_head
    targets = bbox_head.get_targets(seen['sampling'], distiller.student.roi_head.train_cfg)
    labels = targets[0]
    # The RoI head's classification loss is a plain mean cross-entropy over the sampled RoIs.
    torch.testing.assert_close(losses['loss_cls_virtual'].detach(),
                               F.cross_entropy(cls_score, labels), rtol=1e-4, atol=1e-5)
    want = bbox_head.loss(cls_score, bbox_pred, seen['rois'], *targets)
    torch.testing.assert_close(losses['loss_bbox_virtual'].detach(), want['loss_bbox'],
                               rtol=1e-4, atol=1e-5)
    assert not torch.allclose(losses['loss_cls_virtual'], losses['loss_cls'])


def test_distillation_gradient_reaches_the_student_and_never_the_teacher(
        toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    distiller.train()
    data = distiller.data_preprocessor(first_batch(toy_data, tmp_path, toy_teacher_ckpt), True)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    hub = MessageHub.get_current_instance()
    (losses['loss_vrm_sample'] + losses['loss_vrm_class']).backward()
    student = distiller.student
    for name in ('backbone.conv1.weight', 'roi_head.bbox_head.fc_cls.weight',
                 'roi_head.bbox_head.shared_fcs.0.weight'):
        grad = dict(student.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    # The regression branch and the RPN do not feed the class logits.
    assert student.roi_head.bbox_head.fc_reg.weight.grad is None
    assert student.rpn_head.rpn_cls.weight.grad is None
    assert all(p.grad is None for p in distiller.teacher.parameters())
    logged = hub.log_scalars['train/distill_grad_norm'].current()
    assert logged > 0


def test_distill_grad_norm_is_the_norm_of_the_loss_gradient_on_the_logits():
    """Unscaled: under mixed precision the loss scale is divided out."""
    from vrm_det.models.distillers.base_distiller import _log_distill_grad_norm
    g = torch.Generator().manual_seed(0)
    grad = torch.randn(7, 4, generator=g)
    hub = MessageHub.get_current_instance()
    for scale in (1.0, 1024.0):
        _log_distill_grad_norm(grad * scale, loss_scale=scale)
        logged = hub.log_scalars['train/distill_grad_norm'].current()
        assert logged == pytest.approx(grad.double().norm().item(), rel=1e-6)


def test_train_step_takes_the_loss_scale_of_the_optimizer_wrapper(toy_teacher_ckpt,
                                                                  monkeypatch):
    from mmengine.model import BaseModel
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)

    class Scaler:
        def get_scale(self):
            return 512.0

    class AmpLikeWrapper:
        loss_scaler = Scaler()

    seen = []
    monkeypatch.setattr(BaseModel, 'train_step',
                        lambda self, data, wrapper: seen.append(self._loss_scale))
    distiller.train_step({}, AmpLikeWrapper())
    distiller.train_step({}, object())  # a plain OptimWrapper has no loss scaler
    assert seen == [512.0, 1.0]


def test_virtual_view_stays_inside_each_valid_region(toy_teacher_ckpt):
    """Autocontrast uses image statistics: padding must neither enter them nor change."""
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, virtual_view=dict(
        type='PhotometricRandAugment', num_ops=1, ops=('autocontrast',)))
    mean, std = distiller.data_preprocessor.mean, distiller.data_preprocessor.std
    g = torch.Generator().manual_seed(0)
    raw = 60 + 100 * torch.rand(2, 3, 64, 96, generator=g)  # narrow range: autocontrast acts
    sizes = [(64, 96), (40, 56)]
    inputs = (raw - mean) / std
    inputs[1, :, 40:, :] = 0  # the data preprocessor pads with 0 after normalising
    inputs[1, :, :, 56:] = 0
    virtual = distiller.make_virtual_inputs(inputs, sizes)
    torch.testing.assert_close(virtual[1, :, 40:], inputs[1, :, 40:], rtol=0, atol=0)
    torch.testing.assert_close(virtual[1, :, :, 56:], inputs[1, :, :, 56:], rtol=0, atol=0)
    for i, (h, w) in enumerate(sizes):
        region = raw[i, :, :h, :w]
        lo = region.amin((1, 2), keepdim=True)
        hi = region.amax((1, 2), keepdim=True)
        want = ((region - lo) / (hi - lo) * 255 - mean) / std
        torch.testing.assert_close(virtual[i, :, :h, :w], want, rtol=1e-4, atol=1e-4)


def nonfinite_logits():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(6, 6, generator=g) for _ in range(4)]
    logits[0].requires_grad_(True)
    logits[3][2, 1] = float('nan')
    return dict(zip(('student_logits', 'teacher_logits', 'student_virtual_logits',
                     'teacher_virtual_logits'), logits))


def test_nonfinite_logits_in_float32_name_the_tensor_and_iteration(toy_teacher_ckpt):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    MessageHub.get_current_instance().update_info('iter', 41)
    with pytest.raises(FloatingPointError, match='iteration 41: teacher_virtual_logits'):
        distiller.distill(**nonfinite_logits())


def test_nonfinite_logits_under_amp_skip_the_step_and_count_it(toy_teacher_ckpt):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        first = distiller.distill(**nonfinite_logits())
        second = distiller.distill(**nonfinite_logits())
    assert not any('loss' in key for key in first)
    assert first['distill_skipped_steps'].item() == 1
    assert second['distill_skipped_steps'].item() == 2
    finite = nonfinite_logits()
    finite['teacher_virtual_logits'] = torch.nan_to_num(finite['teacher_virtual_logits'])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = distiller.distill(**finite)
    assert torch.isfinite(losses['loss_vrm_sample']) and distiller.skipped_steps == 2
