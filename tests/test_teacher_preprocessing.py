"""The teacher sees the student's batch normalised its own way."""
import pytest
import torch
from conftest import TOY_TEACHER, TOY_VRM
from mmengine.config import Config
from test_detection_distiller import build_distiller, first_batch

from vrm_det.models.distillers.preprocessing import ImageNormalisation, renormalise

# Caffe-style: BGR, another mean, unit std, and a coarser padding divisor.
CAFFE_STYLE = dict(type='DetDataPreprocessor', mean=[103.53, 116.28, 123.675],
                   std=[1.0, 1.0, 1.0], bgr_to_rgb=False, pad_size_divisor=96)


def caffe_style_teacher():
    teacher = Config.fromfile(str(TOY_TEACHER)).model
    teacher.data_preprocessor = CAFFE_STYLE
    return teacher


def test_teacher_inputs_equal_its_own_preprocessor_on_the_raw_batch(toy_data, toy_teacher_ckpt,
                                                                    tmp_path):
    distiller = build_distiller(TOY_VRM, toy_teacher_ckpt, teacher=caffe_style_teacher())
    distiller.train()
    batch = first_batch(toy_data, tmp_path, toy_teacher_ckpt)
    seen = []
    distiller.teacher.backbone.register_forward_pre_hook(
        lambda module, args: seen.append(args[0].detach().clone()))
    data = distiller.data_preprocessor(batch, True)
    distiller.loss(data['inputs'], data['data_samples'])
    want = distiller.teacher.data_preprocessor(batch, False)['inputs']
    assert want.shape[-1] == 192  # 128 px images padded to a multiple of 96
    got = seen[0][:len(want)]  # the real half; the virtual half follows
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    # The student's own normalisation is not what the teacher got.
    assert not torch.allclose(got[..., :128, :128], data['inputs'], atol=1)


def test_renormalise_restores_the_target_padding_and_keeps_pixels_in_place():
    student = ImageNormalisation(torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1),
                                 torch.tensor([2.0, 2.0, 4.0]).view(3, 1, 1), True, 0.0, 1)
    teacher = ImageNormalisation(torch.tensor([10.0, 20.0, 30.0]).view(3, 1, 1),
                                 torch.ones(3, 1, 1), False, -1.0, 8)
    g = torch.Generator().manual_seed(0)
    bgr = 255 * torch.rand(2, 3, 6, 7, generator=g)
    inputs = student.from_loaded(bgr)
    inputs[1, :, 4:] = 0  # the student's padding of a 4 x 5 image
    inputs[1, :, :, 5:] = 0
    out = renormalise(inputs, student, teacher, [(6, 7), (4, 5)])
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out[0, :, :6, :7], bgr[0] - teacher.mean, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out[1, :, :4, :5], bgr[1, :, :4, :5] - teacher.mean, rtol=1e-5,
                               atol=1e-4)
    assert (out[1, :, 4:] == -1).all() and (out[1, :, :, 5:] == -1).all()
    assert (out[0, :, 6:] == -1).all() and (out[0, :, :, 7:] == -1).all()


def test_renormalise_never_writes_into_the_callers_batch():
    """Only the pad value differs: the student's batch (saved for its backward
    pass) must come back untouched."""
    student = ImageNormalisation(None, None, False, 0.0, 1)
    teacher = ImageNormalisation(None, None, False, 114.0, 1)
    inputs = torch.rand(1, 3, 4, 4)
    before = inputs.clone()
    out = renormalise(inputs, student, teacher, [(2, 2)])
    torch.testing.assert_close(inputs, before, rtol=0, atol=0)
    assert (out[0, :, 2:] == 114).all() and torch.equal(out[0, :, :2, :2], before[0, :, :2, :2])


def test_teacher_batch_augments_are_refused_at_build_time(toy_teacher_ckpt):
    teacher = caffe_style_teacher()
    teacher.data_preprocessor['batch_augments'] = [
        dict(type='BatchSyncRandomResize', random_size_range=(96, 160), interval=1)]
    with pytest.raises(ValueError, match='batch_augments.*move the images'):
        build_distiller(TOY_VRM, toy_teacher_ckpt, teacher=teacher)


def test_top_level_data_preprocessor_of_mmpretrain_style_configs(tmp_path):
    """mmpretrain's configs keep the normalisation in a top-level
    ``data_preprocessor`` that mmengine's Runner merges into the model: the
    teacher's config file and the distiller config (for the student) are read
    the same way."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    from test_classifier_distiller import classifier
    init_default_scope('mmpretrain')
    teacher = classifier(16)
    teacher_norm = teacher.pop('data_preprocessor')
    teacher_norm.update(mean=[10.0, 20.0, 30.0], std=[2.0, 3.0, 4.0])
    teacher_file = tmp_path / 'teacher.py'
    teacher_file.write_text(f'model = {teacher!r}\ndata_preprocessor = {teacher_norm!r}\n')
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'state_dict': MODELS.build(dict(teacher, data_preprocessor=teacher_norm))
                .state_dict()}, ckpt)
    student = classifier(8)
    student_norm = student.pop('data_preprocessor')
    model = MODELS.build(dict(type='ImageClassifierDistiller', student=student,
                              teacher=str(teacher_file), teacher_ckpt=str(ckpt),
                              distill_loss=dict(type='KDLoss'),
                              data_preprocessor=student_norm))
    assert model.teacher.data_preprocessor.mean.flatten().tolist() == [10.0, 20.0, 30.0]
    assert model.teacher.data_preprocessor.std.flatten().tolist() == [2.0, 3.0, 4.0]
    torch.testing.assert_close(model.data_preprocessor.mean.flatten(),
                               torch.tensor(student_norm['mean']))
    assert model._teacher_renormalises
