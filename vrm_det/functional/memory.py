"""Trading compute for memory in the loss computations."""
import torch
from torch.utils.checkpoint import checkpoint


def recomputed_in_backward(fn, *args):
    """``fn(*args)``, its intermediate tensors recomputed in the backward pass
    instead of kept (activation checkpointing); a plain call without grad."""
    if torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
