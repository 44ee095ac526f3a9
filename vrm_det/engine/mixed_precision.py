"""Mixed-precision training on GPUs (float16) and on CPUs (bfloat16)."""
from typing import Optional, Union

import torch
from mmengine.device import is_cuda_available
from mmengine.dist import all_reduce
from mmengine.logging import MessageHub, MMLogger
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

CPU_AMP_DTYPE = torch.bfloat16


@OPTIM_WRAPPERS.register_module()
class MixedPrecisionOptimWrapper(AmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper``, usable on machines without a GPU.

    With CUDA it is ``AmpOptimWrapper`` unchanged (float16 autocast by
    default, dynamic loss scaling). Without, mmengine's wrapper refuses to
    build; this one autocasts to bfloat16, the only type CPU autocast
    offers, with loss scaling off: bfloat16 has float32's exponent range, so
    gradients do not underflow. The relation losses compute in float32 in
    either case (:class:`vrm_det.models.losses.DistillLoss`).

    On CPU there is then no grad scaler to skip an overflowing step, so this
    wrapper does it: a step whose loss (any backward since the last step) or
    any gradient is NaN or inf leaves the weights and the optimizer's state
    untouched, zeroes the gradients, is counted in :attr:`skipped_steps`
    (logged as ``amp_skipped_steps``) and logged as a warning naming the
    iteration. The gradients are checked through their norms in one fused
    call (a norm beyond float32's range counts as non-finite); with several
    processes the verdict is reduced over them, so all skip or none do.

    Args:
        loss_scale (str | float | dict): As in ``AmpOptimWrapper`` (GPU only).
        dtype (str | torch.dtype, optional): The autocast type; on CPU only
            ``'bfloat16'`` (or None) is accepted.
        **kwargs: As in ``OptimWrapper``.
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None, **kwargs) -> None:
        self.skipped_steps = 0
        self._skip_nonfinite = not is_cuda_available()  # on GPU the grad scaler skips
        self._loss_finite: Optional[torch.Tensor] = None
        if not self._skip_nonfinite:
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if dtype not in (None, 'bfloat16', CPU_AMP_DTYPE):
            raise ValueError(f'mixed precision on CPU autocasts to bfloat16 only, got '
                             f'dtype={dtype!r}: remove optim_wrapper.dtype or set it to '
                             "'bfloat16'")
        OptimWrapper.__init__(self, **kwargs)  # AmpOptimWrapper's asserts a GPU
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = CPU_AMP_DTYPE

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self._skip_nonfinite:
            finite = torch.isfinite(loss.detach()).all()
            self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite
        super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self._skip_nonfinite and not self._step_is_finite():
            self._skip_step()
            return
        super().step(**kwargs)

    def _step_is_finite(self) -> bool:
        """Whether the loss and every gradient since the last step are finite."""
        grads = [param.grad for group in self.optimizer.param_groups
                 for param in group['params'] if param.grad is not None]
        finite = torch.tensor(True)
        if grads:
            finite = torch.stack(torch._foreach_norm(grads)).isfinite().all().cpu()
        if self._loss_finite is not None:
            finite = finite & self._loss_finite.cpu()
        self._loss_finite = None
        nonfinite = (~finite).float()
        all_reduce(nonfinite)  # a no-op in a single process
        return not nonfinite.item()

    def _skip_step(self) -> None:
        self.skipped_steps += 1
        hub = MessageHub.get_current_instance()
        hub.update_scalar('train/amp_skipped_steps', self.skipped_steps)
        MMLogger.get_current_instance().warning(
            f'iteration {hub.get_info("iter", 0)}: the loss or a gradient is NaN or inf '
            f'under mixed precision; this optimizer step is skipped ({self.skipped_steps} '
            'so far)')
        self.zero_grad()
