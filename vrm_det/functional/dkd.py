"""Decoupled knowledge distillation (target and non-target class terms)."""
import torch
import torch.nn.functional as F
from torch import Tensor


def _kl(p_t: Tensor, log_p_s: Tensor, log_p_t: Tensor) -> Tensor:
    return (p_t * (log_p_t - log_p_s)).sum(-1)


def dkd_divergence(student: Tensor, teacher: Tensor, labels: Tensor, alpha: float = 1.0,
                   beta: float = 8.0, temperature: float = 4.0) -> Tensor:
    """``alpha * TCKD + beta * NCKD``, each scaled by ``T^2``, mean over rows.

    TCKD matches the binary (target, everything else) distributions; NCKD
    matches the distributions among the non-target classes only.

    Args:
        student (Tensor): Student logits, shape (B, C).
        teacher (Tensor): Teacher logits, shape (B, C).
        labels (Tensor): Target class per row, shape (B,), values in [0, C).
        alpha (float): Weight of the target-class term.
        beta (float): Weight of the non-target-class term.
        temperature (float): Softening temperature ``T``.

    Returns:
        Tensor: Scalar. Zero (and connected to ``student``) when B = 0.
    """
    if student.shape[0] == 0:
        return student.sum() * 0
    target = F.one_hot(labels.long(), student.shape[-1]).bool()
    p_s = F.softmax(student / temperature, dim=-1)
    p_t = F.softmax(teacher / temperature, dim=-1)

    def binary(p):
        p_target = p[target]
        return torch.stack([p_target, 1 - p_target], dim=-1).clamp_min(1e-12)

    b_s, b_t = binary(p_s), binary(p_t)
    tckd = _kl(b_t, b_s.log(), b_t.log())

    # Softmax over the non-target classes: push the target logit to -inf.
    masked = torch.finfo(student.dtype).min
    log_q_s = F.log_softmax((student / temperature).masked_fill(target, masked), dim=-1)
    log_q_t = F.log_softmax((teacher / temperature).masked_fill(target, masked), dim=-1)
    q_t = log_q_t.exp()
    nckd = (q_t * (log_q_t - log_q_s)).masked_fill(target, 0).sum(-1)
    return (alpha * tckd + beta * nckd).mean() * temperature**2
