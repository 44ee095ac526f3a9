"""Dynamic pruning of unreliable inter-sample edges.

An edge between two student predictions is unreliable when the predictions
at its endpoints are uncertain: their joint entropy is high. Every step the
edges whose joint entropy lies above the ``percentile``-th percentile of the
batch are dropped from the loss.
"""
import torch
from torch import Tensor

JOINT_ENTROPY_MODES = ('sum', 'cross')


def prediction_entropy(logits: Tensor) -> Tensor:
    """Shannon entropy of ``softmax(logits)`` per row, shape (B,) from (B, C)."""
    return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)


@torch.no_grad()
def joint_entropy(real: Tensor, virtual: Tensor, mode: str = 'sum') -> Tensor:
    """Joint entropy of the endpoints of every real -> virtual edge.

    Args:
        real (Tensor): Student logits on the real view, shape (B, C).
        virtual (Tensor): Student logits on the virtual view, shape (B, C).
        mode (str): ``'sum'`` takes the endpoints as independent,
            ``H(p_i) + H(q_j)``; ``'cross'`` is ``-sum_c p_i[c] log q_j[c]``,
            which also grows when the two predictions disagree.

    Returns:
        Tensor: Shape (B, B), entry ``[i, j]`` for edge ``real[i] -> virtual[j]``.
        Computed without gradient.
    """
    if mode == 'sum':
        return prediction_entropy(real)[:, None] + prediction_entropy(virtual)[None, :]
    if mode == 'cross':
        return -(real.softmax(-1) @ virtual.log_softmax(-1).T)
    raise ValueError(f"joint_entropy must be one of {JOINT_ENTROPY_MODES}, got {mode!r}")


# Below this many values a plain kthvalue is as fast as bracketing.
_DIRECT_SELECTION_SIZE = 1 << 16
_SAMPLE_SIZE = 1 << 14


@torch.no_grad()
def kth_smallest(values: Tensor, k: int) -> Tensor:
    """The k-th smallest entry (1-based) of ``values``, exactly as ``kthvalue``.

    For large inputs a random sample brackets the answer (Floyd-Rivest
    selection): only the values inside the bracket go through ``kthvalue``,
    which makes the per-step pruning of a (1024 x 1024) graph several times
    cheaper. If the bracket misses, the full selection runs.

    Args:
        values (Tensor): Any shape; flattened.
        k (int): In [1, numel].

    Returns:
        Tensor: A scalar.
    """
    flat = values.flatten()
    n = flat.numel()
    if not 1 <= k <= n:
        raise ValueError(f'k={k} must lie in [1, {n}]')
    if n <= _DIRECT_SELECTION_SIZE:
        return flat.kthvalue(k).values
    # A pseudo-random sample from a private generator: reproducible, leaves the
    # global RNG alone, and unlike a strided slice not aligned with matrix rows.
    generator = torch.Generator().manual_seed(n)
    index = torch.randint(n, (_SAMPLE_SIZE,), generator=generator).to(flat.device)
    sample = flat[index]
    s = sample.numel()
    margin = 0.01  # about six standard deviations of the sample quantile
    lo = sample.kthvalue(max(1, int((k / n - margin) * s))).values
    hi = sample.kthvalue(min(s, int((k / n + margin) * s) + 1)).values
    below = int((flat < lo).sum())
    inside = flat[(flat >= lo) & (flat <= hi)]
    if below < k <= below + inside.numel():
        return inside.kthvalue(k - below).values
    return flat.kthvalue(k).values


@torch.no_grad()
def kept_entropy_threshold(entropy: Tensor, keep_percentile: float) -> Tensor:
    """The largest joint entropy an edge may have and be kept.

    The ``k = round(keep_percentile / 100 * numel)`` lowest-entropy edges are
    kept (and any edge tied with the k-th): the threshold is the k-th smallest
    entropy, so also the largest entropy of a kept edge; the largest entropy
    when every edge is kept and ``-inf`` when none is.

    Args:
        entropy (Tensor): Joint entropy per edge, any shape.
        keep_percentile (float): Percent of the edges kept, in [0, 100].

    Returns:
        Tensor: A scalar.
    """
    if not 0 <= keep_percentile <= 100:
        raise ValueError(f'keep_percentile must lie in [0, 100], got {keep_percentile}')
    num_kept = round(keep_percentile / 100 * entropy.numel())
    if num_kept == entropy.numel():
        return entropy.max()
    if num_kept == 0:
        return entropy.new_tensor(float('-inf'))
    return kth_smallest(entropy, num_kept)


@torch.no_grad()
def unreliable_edge_mask(entropy: Tensor, keep_percentile: float) -> Tensor:
    """Mark the edges whose joint entropy lies above the kept percentile.

    ``keep_percentile=100`` keeps every edge, ``keep_percentile=0`` drops
    every edge; see :func:`kept_entropy_threshold`.

    Args:
        entropy (Tensor): Joint entropy per edge, any shape.
        keep_percentile (float): Percent of the edges kept, in [0, 100].

    Returns:
        Tensor: Bool, same shape as ``entropy``; True where the edge is pruned.
    """
    return entropy > kept_entropy_threshold(entropy, keep_percentile)
