"""The classification distiller: same base, losses and virtual view as detection."""
import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from vrm_det.registry import MMPRETRAIN_AVAILABLE

pytestmark = pytest.mark.skipif(not MMPRETRAIN_AVAILABLE, reason='needs mmpretrain')


def classifier(width, num_classes=10):
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', mean=[125.3, 123.0, 113.9],
                               std=[63.0, 62.1, 66.7], to_rgb=False),
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=width,
                      base_channels=width),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=8 * width,
                  loss=dict(type='CrossEntropyLoss')))


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    path = tmp_path_factory.mktemp('cls') / 'teacher.pth'
    torch.save({'state_dict': MODELS.build(classifier(16)).state_dict()}, path)
    return str(path)


def distiller(teacher_ckpt, loss_type='VRMLoss', teacher_classes=10):
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    return MODELS.build(dict(
        type='ImageClassifierDistiller', student=classifier(8),
        teacher=classifier(16, teacher_classes), teacher_ckpt=teacher_ckpt,
        distill_loss=dict(type=loss_type),
        virtual_view=dict(type='PhotometricRandAugment', num_ops=2)))


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    samples = [DataSample().set_gt_label(int(torch.randint(10, (1,), generator=g)))
               for _ in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def test_train_step_distils_on_logits_and_keeps_the_teacher(teacher_ckpt):
    model = distiller(teacher_ckpt)
    model.train()
    teacher_before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    student_before = model.student.head.fc.weight.detach().clone()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    log = model.train_step(batch(), optim)
    for key in ('loss', 'loss_vrm_sample', 'loss_vrm_class', 'kept_fraction'):
        assert torch.isfinite(log[key]), key
    assert not torch.equal(student_before, model.student.head.fc.weight)
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    assert not model.teacher.training


def test_logits_match_independent_forwards(teacher_ckpt):
    from vrm_det.models.distillers import capture_distill_inputs
    model = distiller(teacher_ckpt, loss_type='DKDLoss')
    model.eval()  # batch-norm frozen: the batched and separate forwards agree
    data = batch(4)
    captured = capture_distill_inputs(model, data)
    processed = model.data_preprocessor(data, False)
    with torch.no_grad():
        want_student = model.student(processed['inputs'], mode='tensor')
        want_teacher = model.teacher(processed['inputs'], mode='tensor')
    torch.testing.assert_close(captured['student_logits'], want_student)
    torch.testing.assert_close(captured['teacher_logits'], want_teacher)
    assert captured['labels'].tolist() == [s.gt_label.item() for s in data['data_samples']]
    assert 'student_virtual_logits' not in captured  # DKD matches one view


def test_predict_uses_the_student(teacher_ckpt):
    model = distiller(teacher_ckpt)
    model.eval()
    with torch.no_grad():
        results = model.val_step(batch(3))
    assert len(results) == 3 and results[0].pred_score.shape == (10,)


def test_class_count_mismatch_is_a_build_error(teacher_ckpt):
    with pytest.raises(ValueError, match='teacher predicts 100 classes and the student 10'):
        distiller(teacher_ckpt, teacher_classes=100)
