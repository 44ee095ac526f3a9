"""The classification virtual view made by the data pipeline (mmpretrain's
MultiView + RandAugment): both views reach the distiller, the student and the
teacher see both, and the logits the loss gets are those of the two views."""
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from test_classifier_distiller import classifier

from vrm_det.models.distillers import capture_distill_inputs
from vrm_det.models.virtual_views import split_views
from vrm_det.registry import MMPRETRAIN_AVAILABLE

pytestmark = pytest.mark.skipif(not MMPRETRAIN_AVAILABLE, reason='needs mmpretrain')

RAND_AUGMENT = dict(type='RandAugment', policies='timm_increasing', num_policies=2,
                    total_level=10, magnitude_level=9, magnitude_std=0.5,
                    hparams=dict(pad_val=[104, 116, 124]))
TWO_VIEWS = [dict(type='MultiView', num_views=[1, 1], transforms=[[], [RAND_AUGMENT]]),
             dict(type='PackInputs')]


def pipeline(transforms):
    from mmcv.transforms import Compose
    init_default_scope('mmpretrain')
    return Compose(transforms)


def images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth images with structure, so that geometric operations change pixels.
    ramp = np.linspace(0, 255, 32)
    return [np.clip(ramp[None, :, None] * rng.uniform(0.3, 1.0, 3) + ramp[:, None, None] * 0.3
                    + rng.normal(0, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
            for _ in range(n)]


def two_view_batch(n=6, seed=0):
    random.seed(seed)
    np.random.seed(seed)
    transform = pipeline(TWO_VIEWS)
    samples = [transform(dict(img=img, gt_label=i % 10)) for i, img in enumerate(images(n, seed))]
    return pseudo_collate(samples), samples


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    path = tmp_path_factory.mktemp('pipeline_view') / 'teacher.pth'
    torch.save({'state_dict': MODELS.build(classifier(16)).state_dict()}, path)
    return str(path)


def distiller(teacher_ckpt, loss='VRMLoss', view=None):
    from mmpretrain.registry import MODELS
    view = view if view is not None else dict(type='PipelineView')
    init_default_scope('mmpretrain')
    return MODELS.build(dict(type='ImageClassifierDistiller', student=classifier(8),
                             teacher=classifier(16), teacher_ckpt=teacher_ckpt,
                             distill_loss=dict(type=loss), virtual_view=view))


def test_the_pipeline_gives_each_image_a_real_and_a_different_virtual_view():
    data, samples = two_view_batch(16)
    originals = images(16)
    views = split_views(data['inputs'])
    assert len(views) == 2 and all(len(view) == 16 for view in views)
    for real, image in zip(views[0], originals):
        # PackInputs makes (C, H, W); the real view is the image untouched
        assert torch.equal(real, torch.from_numpy(image).permute(2, 0, 1))
    differing = sum(not torch.equal(r, v) for r, v in zip(*views))
    # Each drawn operation applies with probability 0.5 (timm's RandAugment, as
    # mmpretrain's policies): about a quarter of the images keep both skipped.
    assert differing >= 8


def test_student_and_teacher_see_both_views_and_the_loss_gets_their_logits(teacher_ckpt):
    model = distiller(teacher_ckpt)
    model.eval()  # batch-norm frozen: one batched forward equals separate ones
    data, _ = two_view_batch()
    seen = {'student': [], 'teacher': []}
    for role in seen:
        getattr(model, role).backbone.register_forward_pre_hook(
            lambda _, args, role=role: seen[role].append(args[0].detach().clone()))
    captured = capture_distill_inputs(model, data)

    processed = model.data_preprocessor(data, False)
    real, virtual = processed['inputs']
    student_input = torch.cat(seen['student'])
    teacher_input = torch.cat(seen['teacher'])
    torch.testing.assert_close(student_input, torch.cat([real, virtual]))
    torch.testing.assert_close(teacher_input, torch.cat([real, virtual]))
    with torch.no_grad():
        for key, net, view in (('student_logits', model.student, real),
                               ('student_virtual_logits', model.student, virtual),
                               ('teacher_logits', model.teacher, real),
                               ('teacher_virtual_logits', model.teacher, virtual)):
            torch.testing.assert_close(captured[key], net(view, mode='tensor'), msg=key)
    assert not torch.allclose(captured['student_logits'], captured['student_virtual_logits'])


def test_each_view_is_normalised_by_the_students_preprocessor(teacher_ckpt):
    model = distiller(teacher_ckpt)
    data, _ = two_view_batch(4)
    real, virtual = model.data_preprocessor(data, True)['inputs']
    mean = torch.tensor([125.3, 123.0, 113.9]).view(1, 3, 1, 1)
    std = torch.tensor([63.0, 62.1, 66.7]).view(1, 3, 1, 1)
    for processed, raw in ((real, split_views(data['inputs'])[0]),
                           (virtual, split_views(data['inputs'])[1])):
        torch.testing.assert_close(processed, (torch.stack(raw).float() - mean) / std)


def test_a_training_step_on_two_views(teacher_ckpt):
    from mmengine.optim import OptimWrapper
    model = distiller(teacher_ckpt)
    model.train()
    data, _ = two_view_batch()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss_vrm_sample']) and log['loss_vrm_sample'] > 0


def test_a_loss_without_the_virtual_view_uses_the_real_one_only(teacher_ckpt):
    """KD twins of a VRM config keep its two-view pipeline: the second view is ignored."""
    model = distiller(teacher_ckpt, loss='KDLoss')
    model.eval()
    data, _ = two_view_batch(4)
    captured = capture_distill_inputs(model, data)
    real = model.data_preprocessor(data, False)['inputs'][0]
    assert 'student_virtual_logits' not in captured
    with torch.no_grad():
        torch.testing.assert_close(captured['student_logits'], model.student(real, mode='tensor'))


def test_one_view_with_pipeline_view_and_two_views_without_are_refused(teacher_ckpt):
    from test_classifier_distiller import batch
    model = distiller(teacher_ckpt)
    with pytest.raises(ValueError, match='MultiView'):
        model.loss(**model.data_preprocessor(batch(4), True))
    in_model = distiller(teacher_ckpt, view=dict(type='PhotometricRandAugment', num_ops=2))
    data, _ = two_view_batch(4)
    processed = model.data_preprocessor(data, True)
    with pytest.raises(ValueError, match="virtual_view=dict\\(type='PipelineView'\\)"):
        in_model.loss(**processed)


def test_control_arm_trains_the_student_on_the_virtual_view_without_the_teacher(teacher_ckpt):
    """virtual_cls_loss with a zero-weight KD loss: the student's own cross
    entropy on both views, nothing from the teacher."""
    from mmpretrain.registry import MODELS
    model = MODELS.build(dict(type='ImageClassifierDistiller', student=classifier(8),
                              teacher=classifier(16), teacher_ckpt=teacher_ckpt,
                              distill_loss=dict(type='KDLoss', loss_weight=0.0),
                              virtual_view=dict(type='PipelineView'), virtual_cls_loss=True))
    model.eval()
    data, _ = two_view_batch(4)
    processed = model.data_preprocessor(data, False)
    real, virtual = processed['inputs']
    losses = model.loss(processed['inputs'], processed['data_samples'])
    labels = torch.tensor([s.gt_label.item() for s in processed['data_samples']])
    with torch.no_grad():
        for key, view in (('loss', real), ('loss_virtual', virtual)):
            want = torch.nn.functional.cross_entropy(model.student(view, mode='tensor'), labels)
            torch.testing.assert_close(losses[key], want, msg=key)
    assert losses['loss_kd'] == 0
