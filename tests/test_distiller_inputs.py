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


def test_stats_hook_records_only_what_this_iteration_produced():
    """A statistic absent this step (nothing pruned; no backward yet) is not
    written again with the value of an earlier step."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('stats-hook-test')
    hub.update_scalar('train/kept_fraction', 0.95)
    hub.update_scalar('train/pruned_foreground_share', 0.3)
    hub.update_scalar('train/distill_grad_norm', 2.0)
    hub.update_info('distill_grad_norm_iter', 6)  # written during step 6's backward
    written = []
    runner = SimpleNamespace(message_hub=hub, iter=7, visualizer=SimpleNamespace(
        add_scalars=lambda values, step: written.append((step, values))))
    hook = HOOKS.build(dict(type='DistillStatsHook', interval=1))
    hook.after_train_iter(runner, 0, outputs={'kept_fraction': torch.tensor(0.95)})
    assert written == [(8, {'distill/kept_fraction': 0.95})]
