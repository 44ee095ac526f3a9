"""One relation graph across the processes of a multi-process run.

Each process scores its own images' vertices; gathering their logit rows
lets every process build the graph over all of them (and prune on the
percentile of the whole graph), while each process's gradient flows back to
its own rows only.
"""
from typing import List, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def gathering_world_size() -> int:
    """The number of processes rows are gathered from: 1 outside a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_gather_rows(rows: Tensor, counts: List[int]) -> Tensor:
    """Every process's ``rows`` (``counts[r]`` of them on process ``r``), in
    process order; the collective needs equal shapes, so rows are padded."""
    padded = rows.new_zeros((max(counts),) + tuple(rows.shape[1:]))
    padded[:len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


class _GatherRows(torch.autograd.Function):
    """All-gather along dim 0 whose backward returns this process's slice of
    the gradient, multiplied by the number of processes.

    Every process computes the same loss on the same gathered graph, so the
    gradient of that loss with respect to this process's rows is already
    whole here; DDP then averages the parameter gradients over the
    processes, which the multiplication cancels. The result equals one
    process training on all the rows, with no communication in backward.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, counts: List[int], rank: int) -> Tensor:
        ctx.counts, ctx.rank = counts, rank
        return _all_gather_rows(rows, counts)

    @staticmethod
    def backward(ctx, grad: Tensor):
        start = sum(ctx.counts[:ctx.rank])
        own = grad[start:start + ctx.counts[ctx.rank]]
        return own * len(ctx.counts), None, None


def gather_graph(logits: Tensor, labels: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
    """Join every process's vertices into one graph.

    Args:
        logits (Tensor): This process's vertices, shape (B_r, K): the logit
            matrices side by side. Gathered in float32 (the losses compute
            in it, and every backend reduces it).
        labels (Tensor, optional): Shape (B_r,), gathered without gradient.

    Returns:
        tuple: Logits of shape (sum_r B_r, K), in process order, with the
        gradient flowing back to this process's rows (see
        :class:`_GatherRows`), and the labels likewise, or None.
    """
    if gathering_world_size() == 1:
        return logits, labels
    count = torch.tensor([len(logits)], device=logits.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    gathered = _GatherRows.apply(logits.float(), counts, dist.get_rank())
    if labels is not None:
        labels = _all_gather_rows(labels, counts)
    return gathered, labels
