"""DIST: matching Pearson correlations between and within predictions."""
from torch import Tensor

# Added to the product of norms, as DIST's authors' code does (a clamp would
# differ on near-constant class columns, where the norms are tiny).
_EPS = 1e-8


def _pearson_distance(a: Tensor, b: Tensor, dim: int) -> Tensor:
    """``1 - pearson(a, b)`` along ``dim``, averaged over the other dimension."""
    a = a - a.mean(dim, keepdim=True)
    b = b - b.mean(dim, keepdim=True)
    corr = (a * b).sum(dim) / (a.norm(dim=dim) * b.norm(dim=dim) + _EPS)
    return (1 - corr).mean()


def dist_divergence(student: Tensor, teacher: Tensor, inter_weight: float = 1.0,
                    intra_weight: float = 1.0, temperature: float = 1.0) -> Tensor:
    """``T^2 * (inter_weight * L_inter + intra_weight * L_intra)``.

    ``L_inter`` is one minus the Pearson correlation between the student's and
    the teacher's class distributions of each row, averaged over rows;
    ``L_intra`` is the same along each class column of the batch.

    Args:
        student (Tensor): Student logits, shape (B, C).
        teacher (Tensor): Teacher logits, shape (B, C).
        inter_weight (float): Weight of the per-row (inter-class) term.
        intra_weight (float): Weight of the per-column (intra-class) term.
        temperature (float): Softening temperature ``T``.

    Returns:
        Tensor: Scalar. Zero (and connected to ``student``) when B < 2.
    """
    if student.shape[0] < 2:
        return student.sum() * 0
    p_s = (student / temperature).softmax(-1)
    p_t = (teacher / temperature).softmax(-1)
    inter = _pearson_distance(p_s, p_t, dim=1)
    intra = _pearson_distance(p_s, p_t, dim=0)
    return temperature**2 * (inter_weight * inter + intra_weight * intra)
