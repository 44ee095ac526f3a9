"""Gram-matrix relation matching: one cosine similarity per pair of samples."""
from torch import Tensor

from .edges import cosine_gram


def gram_relation_divergence(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the (B, B) cosine Gram matrices.

    Args:
        student (Tensor): Student logits, shape (B, C).
        teacher (Tensor): Teacher logits, shape (B, C).

    Returns:
        Tensor: Scalar. Zero (and connected to ``student``) when B < 2.
    """
    if student.shape[0] < 2:
        return student.sum() * 0
    return (cosine_gram(student, student) - cosine_gram(teacher, teacher)).pow(2).mean()
