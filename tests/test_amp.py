"""Mixed precision (``--amp``) on CPU: bfloat16 autocast, relation math in float32."""
import torch
from conftest import TOY_VRM, toy_config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.amp import autocast

from vrm_det.apis import build_runner, prepare_train_config
from vrm_det.checkpoint import is_complete_checkpoint
from vrm_det.engine import MixedPrecisionOptimWrapper
from vrm_det.registry import MMDET_MODELS

# bfloat16 keeps 8 significant bits (relative step 2^-8 = 0.4%); the student's
# and teacher's logits carry that error into the relation graphs. Measured on
# the toy batch below: the inter-sample term differs by 0.9% from float32, the
# inter-class term by 0.5% (the detection loss loss_cls by 2.2%).
VRM_TERM_RTOL = 2e-2


def test_amp_trains_the_toy_vrm_config_on_cpu(toy_data, toy_teacher_ckpt, tmp_path):
    cfg = toy_config(TOY_VRM, toy_data, tmp_path, max_iters=2, teacher_ckpt=toy_teacher_ckpt)
    cfg.train_cfg.val_interval = 100
    config_file = tmp_path / 'vrm_toy.py'
    cfg.dump(str(config_file))
    cfg = prepare_train_config(str(config_file), work_dir=str(tmp_path / 'work'), amp=True)
    runner = build_runner(cfg)
    runner.train()
    assert isinstance(runner.optim_wrapper, MixedPrecisionOptimWrapper)
    assert runner.optim_wrapper.cast_dtype == torch.bfloat16
    logged = runner.message_hub.log_scalars
    for key in ('loss_vrm_sample', 'loss_vrm_class', 'loss_cls', 'distill_grad_norm'):
        value = logged[f'train/{key}'].current()
        assert torch.isfinite(torch.tensor(value)) and value > 0, key
    assert is_complete_checkpoint(str(tmp_path / 'work' / 'iter_2.pth'))


def one_step(distiller, batch, mixed: bool):
    """The loss dict of one step and the dtypes the loss received."""
    dtypes = {}

    def record(module, args, kwargs):
        dtypes.update({k: v.dtype for k, v in kwargs.items() if 'logits' in k})

    handle = distiller.distill_loss.register_forward_pre_hook(record, with_kwargs=True)
    torch.manual_seed(0)  # the same virtual view, RoI samples and vertices
    try:
        with autocast(device_type='cpu', dtype=torch.bfloat16, enabled=mixed):
            losses = distiller.loss(**distiller.data_preprocessor(batch, True))
    finally:
        handle.remove()
    return losses, dtypes


def test_vrm_terms_under_amp_match_float32(toy_data, toy_teacher_ckpt, tmp_path):
    cfg = toy_config(TOY_VRM, toy_data, tmp_path, teacher_ckpt=toy_teacher_ckpt)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    init_default_scope('mmdet')
    cfg.model.distill_warmup_iters = 0
    distiller = MMDET_MODELS.build(cfg.model)
    distiller.train()

    full, full_dtypes = one_step(distiller, batch, mixed=False)
    mixed, mixed_dtypes = one_step(distiller, batch, mixed=True)
    assert set(full_dtypes.values()) == {torch.float32}
    assert set(mixed_dtypes.values()) == {torch.bfloat16}  # autocast reached the heads
    for key in ('vrm_sample_term', 'vrm_class_term'):
        assert mixed[key].dtype == torch.float32, key  # the relation math ran in float32
        torch.testing.assert_close(mixed[key], full[key], rtol=VRM_TERM_RTOL, atol=0)
    assert mixed['distill_vertices'] == full['distill_vertices']

