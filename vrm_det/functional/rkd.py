"""Relational knowledge distillation: pairwise distances and triplet angles."""
import torch
import torch.nn.functional as F
from torch import Tensor


def _normalised_distances(x: Tensor) -> Tensor:
    dist = torch.cdist(x, x)
    off_diagonal = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return dist / dist[off_diagonal].mean().clamp_min(1e-12)


def _angles(x: Tensor) -> Tensor:
    """``cos`` of the angle at ``x[j]`` of every triplet (i, j, k), shape (B, B, B)."""
    directions = F.normalize(x[None, :, :] - x[:, None, :], dim=-1)
    return directions @ directions.transpose(1, 2)


def rkd_divergence(student: Tensor, teacher: Tensor, distance_weight: float = 25.0,
                   angle_weight: float = 50.0) -> Tensor:
    """Smooth-L1 between the students' and the teacher's relation potentials.

    The distance potential is the pairwise Euclidean distance divided by its
    mean over distinct pairs; the angle potential is the cosine of the angle
    of each triplet. The angle term builds a (B, B, D) and a (B, B, B)
    tensor: its cost grows with the cube of the batch.

    Args:
        student (Tensor): Student logits, shape (B, C).
        teacher (Tensor): Teacher logits, shape (B, C).
        distance_weight (float): Weight of the distance term.
        angle_weight (float): Weight of the angle term (0 skips it).

    Returns:
        Tensor: Scalar. Zero (and connected to ``student``) when B < 2.
    """
    if student.shape[0] < 2:
        return student.sum() * 0
    loss = distance_weight * F.smooth_l1_loss(
        _normalised_distances(student), _normalised_distances(teacher))
    if angle_weight:
        loss = loss + angle_weight * F.smooth_l1_loss(_angles(student), _angles(teacher))
    return loss
