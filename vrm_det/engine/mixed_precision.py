"""Mixed-precision training on GPUs (float16) and on CPUs (bfloat16)."""
from typing import Optional, Union

import torch
from mmengine.device import is_cuda_available
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

    Args:
        loss_scale (str | float | dict): As in ``AmpOptimWrapper`` (GPU only).
        dtype (str | torch.dtype, optional): The autocast type; on CPU only
            ``'bfloat16'`` (or None) is accepted.
        **kwargs: As in ``OptimWrapper``.
    """

    def __init__(self, loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None, **kwargs) -> None:
        if is_cuda_available():
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
