"""Input checks shared by the distillation losses."""
from typing import Optional, Sequence

import torch
from torch import Tensor


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Raise a ValueError naming ``name``, the bad value and the allowed ones."""
    if value not in allowed:
        raise ValueError(f'{name}={value!r} is not supported; choose one of '
                         f'{", ".join(repr(a) for a in allowed)}')


class NonFiniteLogitsError(ValueError):
    """Logits hold NaN or inf; ``tensor_name`` names the tensor."""

    def __init__(self, tensor_name: str) -> None:
        super().__init__(f'{tensor_name} contains NaN or inf; the model that produced it '
                         'diverged or was fed invalid input')
        self.tensor_name = tensor_name


def check_logits(name: str, logits: Optional[Tensor], reference: Optional[Tensor] = None,
                 reference_name: str = 'student_logits') -> None:
    """Check that ``logits`` is a finite (B, C) tensor shaped like ``reference``."""
    if logits is None:
        return
    if logits.dim() != 2:
        raise ValueError(f'{name} must have shape (B, C), got {tuple(logits.shape)}')
    if reference is not None and logits.shape != reference.shape:
        what = ('class counts differ: teacher and student must predict the same classes'
                if logits.shape[0] == reference.shape[0] else 'batch sizes differ')
        raise ValueError(f'{name} has shape {tuple(logits.shape)} but {reference_name} '
                         f'has {tuple(reference.shape)} ({what})')
    if not torch.isfinite(logits).all():
        raise NonFiniteLogitsError(name)
