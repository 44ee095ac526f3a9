"""Baseline distillation losses, called like :class:`VRMLoss`.

They match one view only: the virtual logits, if passed, are ignored, and
``uses_virtual_view = False`` tells the distillers not to compute them.
"""
from typing import Dict, Optional

from torch import Tensor

from vrm_det.functional import (
    dist_divergence,
    dkd_divergence,
    gram_relation_divergence,
    kd_divergence,
    rkd_divergence,
)
from vrm_det.registry import register_model

from .base import DistillLoss


@register_model
class KDLoss(DistillLoss):
    """Hinton's KD on the real view: ``loss_weight * T^2 * KL(p_t || p_s)``.

    Args:
        temperature (float): Softening temperature.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, temperature: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature, self.loss_weight = temperature, loss_weight

    def compute(self, student, teacher, student_virtual, teacher_virtual,
                labels) -> Dict[str, Tensor]:
        return dict(loss_kd=self.loss_weight * kd_divergence(student, teacher, self.temperature))


@register_model
class DKDLoss(DistillLoss):
    """Decoupled KD on the real view; needs the ground-truth labels.

    Args:
        alpha (float): Weight of the target-class term (TCKD).
        beta (float): Weight of the non-target-class term (NCKD).
        temperature (float): Softening temperature.
        loss_weight (float): Weight of the loss.
    """
    needs_labels = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta
        self.temperature, self.loss_weight = temperature, loss_weight

    def compute(self, student, teacher, student_virtual, teacher_virtual,
                labels: Optional[Tensor]) -> Dict[str, Tensor]:
        loss = dkd_divergence(student, teacher, labels, self.alpha, self.beta, self.temperature)
        return dict(loss_dkd=self.loss_weight * loss)


@register_model
class DISTLoss(DistillLoss):
    """DIST (Pearson inter- and intra-class relations) on the real view.

    Args:
        inter_weight (float): Weight of the per-sample term.
        intra_weight (float): Weight of the per-class term.
        temperature (float): Softening temperature.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, inter_weight: float = 1.0, intra_weight: float = 1.0,
                 temperature: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.inter_weight, self.intra_weight = inter_weight, intra_weight
        self.temperature, self.loss_weight = temperature, loss_weight

    def compute(self, student, teacher, student_virtual, teacher_virtual,
                labels) -> Dict[str, Tensor]:
        loss = dist_divergence(student, teacher, self.inter_weight, self.intra_weight,
                               self.temperature)
        return dict(loss_dist=self.loss_weight * loss)


@register_model
class RKDLoss(DistillLoss):
    """RKD (distance and angle potentials) on the real view.

    Args:
        distance_weight (float): Weight of the distance term.
        angle_weight (float): Weight of the angle term; its cost is cubic in
            the batch, set 0 to skip it.
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, distance_weight: float = 25.0, angle_weight: float = 50.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.distance_weight, self.angle_weight = distance_weight, angle_weight
        self.loss_weight = loss_weight

    def compute(self, student, teacher, student_virtual, teacher_virtual,
                labels) -> Dict[str, Tensor]:
        loss = rkd_divergence(student, teacher, self.distance_weight, self.angle_weight)
        return dict(loss_rkd=self.loss_weight * loss)


@register_model
class GramRelationLoss(DistillLoss):
    """Match the (B, B) cosine Gram matrices of the real view.

    Args:
        loss_weight (float): Weight of the loss.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def compute(self, student, teacher, student_virtual, teacher_virtual,
                labels) -> Dict[str, Tensor]:
        return dict(loss_gram=self.loss_weight * gram_relation_divergence(student, teacher))
