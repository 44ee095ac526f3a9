"""One relation graph across the processes of a multi-process run.

Each process scores its own images' vertices. Two ways to build one graph
over all of them (the pruning percentile is then the whole graph's):

* ``'sharded'``: each process computes its own share of the graph (its real
  vertices' rows of the inter-sample graph, its vertices' part of the
  inter-class sums; :mod:`vrm_det.functional.sharded`), about ``k`` times the
  work of a per-process graph for ``k`` processes;
* ``'replicated'``: every process gathers every row and computes the whole
  graph, ``k^2`` times the work; any distillation loss.

Either way each process's logits receive ``k`` times their gradient of the
whole loss, which DDP's averaging cancels: training equals one process
holding every vertex.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
from torch import Tensor

from vrm_det.functional.sharded import all_gather_rows
from vrm_det.functional.shards import VertexShards, all_gather_counts
from vrm_det.models.losses import DistillLoss, VRMLoss

#: Values of the distillers' ``gather_vertices`` option.
GATHER_MODES = (False, True, 'sharded', 'replicated')


def gathering_world_size() -> int:
    """The number of processes rows are gathered from: 1 outside a process group."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def why_not_sharded(loss: DistillLoss) -> Optional[str]:
    """Why ``loss`` has no sharded form, or None when it has one."""
    if not isinstance(loss, VRMLoss):
        return f'{type(loss).__name__} has no sharded form (VRMLoss has)'
    options = loss.options
    if options['relation'] != 'vector' or options['penalty'] != 'l2':
        return (f"the sharded VRM graph needs relation='vector' and loss='l2', got "
                f"relation={options['relation']!r}, loss={options['penalty']!r}")
    if loss.kd_weight:
        return ('the KD term (kd_weight) is an instance term, each process would take '
                'the mean of its own rows')
    return None


def resolve_gather_mode(gather_vertices: Union[bool, str], loss: DistillLoss
                        ) -> Optional[str]:
    """``'sharded'``, ``'replicated'`` or None (one graph per process).

    ``True`` is ``'sharded'`` where the loss has a sharded form and
    ``'replicated'`` otherwise; an explicit ``'sharded'`` the loss cannot
    compute is an error.
    """
    if not (isinstance(gather_vertices, bool) or gather_vertices in GATHER_MODES[2:]):
        raise ValueError(f'gather_vertices={gather_vertices!r} must be one of False, True, '
                         "'sharded' or 'replicated'")
    if gather_vertices is False:
        return None
    reason = why_not_sharded(loss)
    if gather_vertices is True:
        return 'replicated' if reason else 'sharded'
    if gather_vertices == 'sharded' and reason:
        raise ValueError(f"gather_vertices='sharded': {reason}; use "
                         "gather_vertices='replicated'")
    return gather_vertices


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
        return all_gather_rows(rows, counts)

    @staticmethod
    def backward(ctx, grad: Tensor):
        start = sum(ctx.counts[:ctx.rank])
        own = grad[start:start + ctx.counts[ctx.rank]]
        return own * len(ctx.counts), None, None


def gather_graph(logits: Tensor, labels: Optional[Tensor] = None
                 ) -> Tuple[Tensor, Optional[Tensor]]:
    """Join every process's vertices into one graph (``'replicated'``).

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
    counts = all_gather_counts(len(logits), logits.device)
    gathered = _GatherRows.apply(logits.float(), counts, dist.get_rank())
    if labels is not None:
        labels = all_gather_rows(labels, counts)
    return gathered, labels


@torch.no_grad()
def shard_layout(logits: Dict[str, Tensor]) -> Tuple[VertexShards, Optional[str]]:
    """The layout of the sharded graph, and the name of a logit matrix that is
    not finite on some process (None if all are), in one all-gather: every
    process must then skip or stop alike, since the sharded loss communicates.

    Args:
        logits (dict[str, Tensor]): This process's logit matrices, (B_r, C) each.
    """
    names = list(logits)
    rows = logits[names[0]]
    local = torch.tensor([len(rows)] + [int(not torch.isfinite(logits[name]).all())
                                        for name in names], device=rows.device)
    parts = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    nonfinite = torch.stack(parts)[:, 1:].amax(0).tolist()
    shards = VertexShards(tuple(int(part[0]) for part in parts), dist.get_rank())
    return shards, next((name for name, flag in zip(names, nonfinite) if flag), None)
