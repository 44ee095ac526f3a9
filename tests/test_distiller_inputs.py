"""What users hand a distiller: checkpoint locations, detectors it cannot
distil, hooks from another codebase's scope."""
import pytest
import torch
from conftest import TOY_VRM
from mmengine.registry import HOOKS, DefaultScope
from mmengine.runner import CheckpointLoader
from test_detection_distiller import build_distiller

from vrm_det.models.distillers import base_distiller


def test_a_model_zoo_url_goes_to_the_checkpoint_loader(toy_teacher_ckpt, monkeypatch):
    """No 'train the teacher first' for a URL: mmengine's loader fetches it."""
    asked = []
    local = CheckpointLoader.load_checkpoint(str(toy_teacher_ckpt), map_location='cpu')

    def fake_load(path, map_location=None, **kwargs):
        asked.append(path)
        return local

    monkeypatch.setattr(base_distiller.CheckpointLoader, 'load_checkpoint', fake_load)
    url = 'https://download.example/faster_rcnn_teacher.pth'
    distiller = build_distiller(TOY_VRM, url)
    assert asked == [url]
    saved = local['state_dict']
    for key, value in distiller.teacher.state_dict().items():
        torch.testing.assert_close(value, saved[key], msg=key)


def test_cascade_rcnn_is_refused_at_build_time_naming_the_head(toy_teacher_ckpt):
    with pytest.raises(TypeError, match='CascadeRoIHead with 3 bbox heads.*Cascade R-CNN'):
        build_distiller(TOY_VRM, toy_teacher_ckpt,
                        teacher='mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py')


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain', 'mmengine'])
def test_hooks_are_found_from_every_scope(scope):
    with DefaultScope.overwrite_default_scope(scope):
        hook = HOOKS.build(dict(type='DistillStatsHook', interval=3))
    assert type(hook).__name__ == 'DistillStatsHook' and hook.interval == 3
