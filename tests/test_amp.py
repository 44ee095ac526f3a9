"""Mixed precision (``--amp``) on CPU: bfloat16 autocast, relation math in float32."""
from pathlib import Path

import pytest
import torch
from conftest import TOY_VRM, toy_config
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.runner.amp import autocast
from torch import nn

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



class NonFiniteAtIterOne(BaseModel):
    """A linear model whose step at iteration 1 is non-finite: an inf loss
    with finite gradients (``'loss'``), or a finite loss with NaN gradients
    (``'grad'``: the gradient of sqrt at 0 is inf, times 0)."""

    def __init__(self, inject: str):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.inject = inject

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode != 'loss':
            return out
        loss = out.float().pow(2).mean()
        if MessageHub.get_current_instance().get_info('iter') == 1:
            if self.inject == 'loss':
                loss = loss + float('inf')
            else:
                loss = loss + torch.sqrt(0 * self.linear.weight.sum())
        return dict(loss=loss)


class RecordStep(Hook):
    """The weights and momentum buffers before and after each iteration."""

    def __init__(self):
        self.before, self.after, self.grads_after = {}, {}, {}

    def _snapshot(self, runner):
        optimizer = runner.optim_wrapper.optimizer
        momenta = [optimizer.state[p].get('momentum_buffer') for p in runner.model.parameters()]
        return [(p.detach().clone(), None if m is None else m.clone())
                for p, m in zip(runner.model.parameters(), momenta)]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter] = self._snapshot(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.after[runner.iter] = self._snapshot(runner)
        self.grads_after[runner.iter] = [p.grad for p in runner.model.parameters()]


def same_state(a, b) -> bool:
    return all(torch.equal(wa, wb) and (ma is None) == (mb is None)
               and (ma is None or torch.equal(ma, mb)) for (wa, ma), (wb, mb) in zip(a, b))


@pytest.mark.parametrize('inject', ['loss', 'grad'])
def test_cpu_amp_skips_a_nonfinite_step(inject, tmp_path):
    record = RecordStep()
    data = [dict(inputs=torch.randn(3), data_samples=torch.zeros(1)) for _ in range(6)]
    runner = Runner(
        model=NonFiniteAtIterOne(inject), work_dir=str(tmp_path),
        experiment_name=f'amp_skip_{inject}_{tmp_path.name}',
        train_dataloader=dict(dataset=data, batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(type='MixedPrecisionOptimWrapper',
                           optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=None), custom_hooks=[record], randomness=dict(seed=0))
    runner.train()
    assert isinstance(runner.optim_wrapper, MixedPrecisionOptimWrapper)

    # iteration 1 left the weights and the momentum buffers as they were
    assert same_state(record.before[1], record.after[1])
    assert all(g is None or not g.any() for g in record.grads_after[1])
    for iteration in (0, 2):  # the finite steps trained
        weights = zip(record.before[iteration], record.after[iteration])
        assert not all(torch.equal(a, b) for (a, _), (b, _) in weights), iteration
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    assert runner.optim_wrapper.skipped_steps == 1
    assert runner.message_hub.log_scalars['train/amp_skipped_steps'].current() == 1
    log = Path(runner.log_dir, f'{runner.timestamp}.log').read_text()
    assert 'iteration 1:' in log and 'skipped' in log
