"""Relational knowledge distillation: pairwise distances and triplet angles."""
import torch
import torch.nn.functional as F
from torch import Tensor

from .memory import recomputed_in_backward

# Anchors per block of the angle term: a block holds (rows, B, max(B, D))
# floats, about this many, so memory stays bounded at any batch size.
_ANGLE_BLOCK_FLOATS = 1 << 22


def _normalised_distances(x: Tensor) -> Tensor:
    dist = torch.cdist(x, x)
    off_diagonal = ~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
    return dist / dist[off_diagonal].mean().clamp_min(1e-12)


def _angles(x: Tensor, anchors: slice = slice(None)) -> Tensor:
    """``cos`` of the angle at ``x[i]`` between ``x[j]`` and ``x[k]`` for the
    anchors ``i`` selected, shape (len(anchors), B, B)."""
    directions = F.normalize(x[None, :, :] - x[anchors, None, :], dim=-1)
    return directions @ directions.transpose(1, 2)


def _angle_block_loss(student: Tensor, teacher: Tensor, start: int, stop: int) -> Tensor:
    rows = slice(start, stop)
    return F.smooth_l1_loss(_angles(student, rows), _angles(teacher, rows), reduction='sum')


def angle_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean smooth-L1 between the (B, B, B) angle potentials, computed a block
    of anchors at a time and recomputed in the backward pass, so that memory
    is O(block * B * max(B, D)) instead of O(B^3)."""
    batch, dim = student.shape
    block = max(1, _ANGLE_BLOCK_FLOATS // (batch * max(batch, dim)))
    total = student.new_zeros(())
    for start in range(0, batch, block):
        stop = min(batch, start + block)
        total = total + recomputed_in_backward(_angle_block_loss, student, teacher, start, stop)
    return total / batch**3


def rkd_divergence(student: Tensor, teacher: Tensor, distance_weight: float = 25.0,
                   angle_weight: float = 50.0) -> Tensor:
    """Smooth-L1 between the students' and the teacher's relation potentials.

    The distance potential is the pairwise Euclidean distance divided by its
    mean over distinct pairs; the angle potential is the cosine of the angle
    of each triplet. The angle term's work grows with the cube of the batch;
    it is computed in blocks of anchors (see :func:`angle_loss`), so its
    memory stays bounded.

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
        loss = loss + angle_weight * angle_loss(student, teacher)
    return loss
