"""The in-model virtual view receives RGB pixels whatever order the images were
loaded in and whatever order the model sees.

mmdet loads images BGR (mmcv); its preprocessor converts them to RGB
(``bgr_to_rgb=True``) or, in caffe-style configs, leaves the model BGR.
mmpretrain's CIFAR-like datasets yield RGB arrays (``to_rgb=False``) and its
ImageNet pipeline loads BGR files (``to_rgb=True``).
"""
import copy

import pytest
import torch
from conftest import TOY_TEACHER, TOY_VRM
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_classifier_distiller import teacher_ckpt  # noqa: F401  (a fixture)
from torch import nn

from vrm_det.registry import MMPRETRAIN_AVAILABLE

SIZE = (40, 56)  # smaller than mmdet's padded canvas (multiples of 32)


class RecordingView(nn.Module):
    """The identity view, keeping what it was given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, images):
        self.seen.append(images.clone())
        return images


def red_image(loaded_rgb):
    """A pure red (3, H, W) uint8 image in its loaded channel order."""
    image = torch.zeros(3, *SIZE, dtype=torch.uint8)
    image[0 if loaded_rgb else 2] = 255
    return image


def check_view_sees_red(distiller, inputs):
    view = distiller.virtual_view = RecordingView()
    virtual = distiller.make_virtual_inputs(inputs, [SIZE])
    assert len(view.seen) == 1
    seen = view.seen[0]
    assert seen.shape == (1, 3, *SIZE)
    expected = torch.zeros_like(seen)
    expected[:, 0] = 255  # R first: the view works on RGB
    torch.testing.assert_close(seen, expected, rtol=0, atol=1e-3)
    torch.testing.assert_close(virtual, inputs, rtol=0, atol=1e-4)


@pytest.fixture(scope='module')
def detection_teacher_ckpt(tmp_path_factory):
    from vrm_det.registry import MMDET_MODELS
    init_default_scope('mmdet')
    path = tmp_path_factory.mktemp('det_channels') / 'teacher.pth'
    model = MMDET_MODELS.build(Config.fromfile(str(TOY_TEACHER)).model)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.mark.parametrize('bgr_to_rgb', [True, False], ids=['rgb-model', 'caffe-style'])
def test_detection_view_receives_rgb(detection_teacher_ckpt, bgr_to_rgb):
    """Images are loaded BGR; the model sees RGB or (caffe-style) BGR."""
    from mmdet.structures import DetDataSample
    from test_detection_distiller import build_distiller
    student = copy.deepcopy(Config.fromfile(str(TOY_VRM)).model.student)
    student.data_preprocessor.bgr_to_rgb = bgr_to_rgb
    if not bgr_to_rgb:  # caffe-style: mean and std in BGR order
        student.data_preprocessor.mean = student.data_preprocessor.mean[::-1]
        student.data_preprocessor.std = student.data_preprocessor.std[::-1]
    distiller = build_distiller(TOY_VRM, detection_teacher_ckpt, student=student)
    data = distiller.data_preprocessor(
        dict(inputs=[red_image(loaded_rgb=False)],
             data_samples=[DetDataSample(metainfo=dict(img_shape=SIZE))]), False)
    assert data['inputs'].shape[-2:] != SIZE  # padded: the view must see the image only
    check_view_sees_red(distiller, data['inputs'])


@pytest.mark.skipif(not MMPRETRAIN_AVAILABLE, reason='needs mmpretrain')
@pytest.mark.parametrize('to_rgb', [False, True], ids=['cifar-rgb-arrays', 'imagenet-bgr-files'])
def test_classification_view_receives_rgb(teacher_ckpt, to_rgb):  # noqa: F811 (the fixture)
    """CIFAR-like datasets yield RGB arrays (to_rgb=False); ImageNet's files are
    loaded BGR and converted (to_rgb=True). Either way the model sees RGB."""
    from mmpretrain.registry import MODELS
    from test_classifier_distiller import classifier
    init_default_scope('mmpretrain')
    student = classifier(8)
    student['data_preprocessor'].update(to_rgb=to_rgb)
    distiller = MODELS.build(dict(
        type='ImageClassifierDistiller', student=student, teacher=classifier(16),
        teacher_ckpt=teacher_ckpt, distill_loss=dict(type='VRMLoss'),
        virtual_view=dict(type='PhotometricRandAugment', num_ops=1)))
    data = distiller.data_preprocessor(dict(inputs=[red_image(loaded_rgb=not to_rgb)]), False)
    check_view_sees_red(distiller, data['inputs'])
