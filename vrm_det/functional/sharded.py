"""One VRM graph over every process's vertices, each process computing its share.

Process ``r`` holds ``B_r`` rows of each logit matrix; the graph is the one a
single process would build from all ``N = sum_r B_r`` rows (in rank order).
Process ``r`` computes:

* the inter-sample graph's rows of its own real vertices against every
  process's virtual vertices (``B_r x N`` edges), after one all-gather of the
  virtual rows (whose backward all-reduces their gradient, as SyncBatchNorm's
  does);
* its share of the inter-class graph: an inter-class edge lives in R^N (one
  entry per vertex), so its squared length and its inner product with the
  teacher's edge are sums over vertices; each process sums over its own rows;
* the pruning threshold, exactly the percentile of the whole ``N x N`` joint
  entropy matrix, by a distributed selection that never holds that matrix.

Every sum over vertices (the inter-class inner products, the inter-sample
error and its edge counts, the logged statistics) travels in one
all-reduce; inter-class edges too ill-conditioned for the expansion take a
second one (see :func:`_inter_class_inner_products`).

Gradient convention: each process's logits receive ``world_size`` times their
gradient of the whole loss, which DDP's averaging over processes cancels
(the same convention as the replicated gather in
``vrm_det.models.distillers.gather``). Values are equal on every process and
equal to one process holding all the rows, up to rounding.

Plain torch and ``torch.distributed``: nothing here knows a detector.
"""
import itertools
import math
from typing import List, Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from .edges import (
    SHORT_EDGE_MODES,
    _centred,
    _ill_conditioned,
    edge_length_floor,
    edge_matching_error_fused,
    edge_matching_error_reference,
    long_edge_mask,
)
from .pruning import joint_entropy
from .shards import VertexShards, all_gather_counts
from .vrm import VRMTerms, edgeless_terms, inter_class_vertices

# The distributed selection gathers the candidates once at most this many are left.
_GATHERED_SELECTION_SIZE = 1 << 16
# Sample that brackets the k-th value, over all processes, and its margin
# (about six standard deviations of a sample quantile), as in pruning.kth_smallest.
_SAMPLE_SIZE = 1 << 14
_SAMPLE_MARGIN = 0.01


# -- collectives -----------------------------------------------------------

def all_gather_rows(rows: Tensor, counts: Sequence[int], group=None) -> Tensor:
    """Every process's ``rows`` (``counts[r]`` of them on process ``r``), in rank
    order, without gradient. The collective needs equal shapes: rows are padded.

    Args:
        rows (Tensor): This process's rows, shape (counts[rank], ...).
        counts (Sequence[int]): Rows per process.

    Returns:
        Tensor: Shape (sum(counts), ...).
    """
    padded = rows.new_zeros((max(counts),) + tuple(rows.shape[1:]))
    padded[:len(rows)] = rows
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous(), group=group)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def _all_reduced(values: Tensor, group=None, op=dist.ReduceOp.SUM) -> Tensor:
    """``values`` reduced over the processes, without gradient."""
    values = values.detach().clone()
    dist.all_reduce(values, op=op, group=group)
    return values


class _RowsGatheredForShards(torch.autograd.Function):
    """All-gather along dim 0 for a loss of which each process computes a part.

    The gradient of the whole loss with respect to this process's rows is the
    sum, over processes, of the gradient their parts send to these rows: the
    backward all-reduces the gathered gradient and keeps this process's slice.
    """

    @staticmethod
    def forward(ctx, rows: Tensor, shards: VertexShards) -> Tensor:
        ctx.shards = shards
        return all_gather_rows(rows, shards.counts, shards.group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        shards = ctx.shards
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, group=shards.group)
        return grad[shards.start:shards.start + shards.counts[shards.rank]], None


class _SummedOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose backward multiplies the gradient by the world size.

    Every process computes the same function of the sum, so the gradient of
    the loss summed over the processes is ``world_size`` times this process's;
    DDP's averaging of the parameter gradients then divides it back.
    """

    @staticmethod
    def forward(ctx, values: Tensor, shards: VertexShards) -> Tensor:
        ctx.world_size = shards.world_size
        return _all_reduced(values, shards.group)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.world_size, None


# -- the pruning threshold -------------------------------------------------

@torch.no_grad()
def sharded_kth_smallest(values: Tensor, k: int, group=None,
                         gathered_size: int = _GATHERED_SELECTION_SIZE) -> Tensor:
    """The k-th smallest (1-based) of every process's ``values`` together, exactly.

    Each round a random sample, gathered from all processes, brackets the
    answer; the processes count their values below and inside the bracket
    (one all-reduce) and keep the side that holds it. Once at most
    ``gathered_size`` candidates are left, they are gathered and selected
    from. No process ever holds more than its own values, the sample and
    that final set. Every process must call it; all return the same value.

    Args:
        values (Tensor): This process's values, any shape (flattened); may be empty.
        k (int): In [1, total number of values].
        group: The process group.
        gathered_size (int): Candidate count below which they are gathered.

    Returns:
        Tensor: A scalar, equal on every process.
    """
    candidates = values.flatten()
    rank = dist.get_rank(group)
    for round_index in itertools.count():
        sizes = all_gather_counts(candidates.numel(), candidates.device, group)
        total = sum(sizes)
        if not 1 <= k <= total:
            raise ValueError(f'k={k} must lie in [1, {total}]')
        if total <= gathered_size:
            return all_gather_rows(candidates, sizes, group).kthvalue(k).values
        # Each process samples in proportion to its candidates.
        sample_sizes = [math.ceil(_SAMPLE_SIZE * size / total) for size in sizes]
        generator = torch.Generator().manual_seed(round_index * len(sizes) + rank)
        index = torch.randint(max(1, sizes[rank]), (sample_sizes[rank],), generator=generator)
        sample = all_gather_rows(candidates[index.to(candidates.device)], sample_sizes, group)
        s = sample.numel()
        lo = sample.kthvalue(max(1, int((k / total - _SAMPLE_MARGIN) * s))).values
        hi = sample.kthvalue(min(s, int((k / total + _SAMPLE_MARGIN) * s) + 1)).values
        below_mask = candidates < lo
        inside_mask = (candidates >= lo) & (candidates <= hi)
        below, inside = _all_reduced(torch.stack([below_mask.sum(), inside_mask.sum()]),
                                     group).tolist()
        if k <= below:
            candidates = candidates[below_mask]
        elif k > below + inside:
            candidates, k = candidates[candidates > hi], k - below - inside
        elif bool(lo == hi):
            return lo
        elif inside < total:
            candidates, k = candidates[inside_mask], k - below
        else:
            # The bracket holds every candidate (heavy ties at its ends): peel
            # off the smallest value, which the sample shows is present.
            equal = int(_all_reduced((candidates == lo).sum(), group))
            if k <= equal:
                return lo
            candidates, k = candidates[candidates > lo], k - equal
    raise AssertionError('unreachable')


@torch.no_grad()
def sharded_kept_entropy_threshold(entropy: Tensor, total: int, keep_percentile: float,
                                   group=None) -> Tensor:
    """:func:`~.pruning.kept_entropy_threshold` of the whole graph, from this
    process's share of its edges.

    Args:
        entropy (Tensor): This process's edges' joint entropies, any shape.
        total (int): Edges of the whole graph, over all processes.
        keep_percentile (float): Percent of the edges kept, in [0, 100].
        group: The process group.

    Returns:
        Tensor: A scalar, equal on every process.
    """
    if not 0 <= keep_percentile <= 100:
        raise ValueError(f'keep_percentile must lie in [0, 100], got {keep_percentile}')
    num_kept = round(keep_percentile / 100 * total)
    if num_kept == total:
        local_max = entropy.max() if entropy.numel() else entropy.new_tensor(float('-inf'))
        return _all_reduced(local_max, group, dist.ReduceOp.MAX)
    if num_kept == 0:
        return entropy.new_tensor(float('-inf'))
    return sharded_kth_smallest(entropy, num_kept, group)


# -- the inter-class graph from sums over vertices -------------------------

def _inner_product_sums(s_src: Tensor, s_dst: Tensor, t_src: Tensor, t_dst: Tensor
                        ) -> List[Tensor]:
    """This process's share of the sums over the edge dimension that the
    expanded edge error needs (see :func:`~.edges.edge_matching_error_fused`).

    Inputs are this process's coordinates of the vertices: ``s_src`` (N, D_r),
    ``s_dst`` (M, D_r), likewise the teacher's. Each is centred per
    coordinate, as the unsharded computation does (the shift of a coordinate
    depends on that coordinate alone).

    Returns:
        list[Tensor]: ``|s_src|^2`` (N), ``|s_dst|^2`` (M), ``<s_src, s_dst>``
        (N, M), the same three for the teacher, and ``<s_src, t_src>`` (N),
        ``<s_dst, t_dst>`` (M), ``<s_src, t_dst>`` (N, M), ``<t_src, s_dst>`` (N, M).
    """
    s_src, s_dst = _centred(s_src, s_dst)
    t_src, t_dst = _centred(t_src, t_dst)
    return [s_src.pow(2).sum(1), s_dst.pow(2).sum(1), s_src @ s_dst.T,
            t_src.pow(2).sum(1), t_dst.pow(2).sum(1), t_src @ t_dst.T,
            (s_src * t_src).sum(1), (s_dst * t_dst).sum(1), s_src @ t_dst.T, t_src @ s_dst.T]


def _inter_class_inner_products(sums: List[Tensor], s_src, s_dst, t_src, t_dst, s_floor,
                                t_floor, shards: VertexShards):
    """Squared lengths of every student edge ``d`` and teacher edge ``e`` and
    their inner products ``<d, e>``, shape (N, M) each, from the reduced sums.

    Where the expansion would lose more than two digits (the edges
    :func:`~.edges.direct_edge_mask` names) the three come from the edge
    differences instead, summed over the processes in a second all-reduce.
    Every process takes the same decision: it depends on reduced values only.
    """
    (s_src_sq, s_dst_sq, s_inner, t_src_sq, t_dst_sq, t_inner,
     st_src, st_dst, s_src_t_dst, t_src_s_dst) = sums
    s_scale = s_src_sq[:, None] + s_dst_sq[None, :]
    t_scale = t_src_sq[:, None] + t_dst_sq[None, :]
    s_dist_sq = s_scale - 2 * s_inner
    t_dist_sq = t_scale - 2 * t_inner
    inner = st_src[:, None] + st_dst[None, :] - s_src_t_dst - t_src_s_dst
    with torch.no_grad():
        direct = _ill_conditioned(s_dist_sq.clamp_min(s_floor.pow(2)), s_scale)
        direct |= _ill_conditioned(t_dist_sq.clamp_min(t_floor.pow(2)), t_scale)
    if not direct.any():
        return s_dist_sq, t_dist_sq, inner
    # From the uncentred differences, as the unsharded computation takes them.
    rows, cols = direct.nonzero(as_tuple=True)
    s_diff, t_diff = s_src[rows] - s_dst[cols], t_src[rows] - t_dst[cols]
    direct_sums = torch.stack([s_diff.pow(2).sum(1), t_diff.pow(2).sum(1),
                               (s_diff * t_diff).sum(1)]).to(s_dist_sq.dtype)
    # A buffer of fixed shape: the collective does not depend on the edge count.
    buffer = s_dist_sq.new_zeros((3,) + tuple(s_dist_sq.shape))
    buffer = buffer.index_put((torch.arange(3, device=rows.device)[:, None], rows, cols),
                              direct_sums)
    buffer = _SummedOverProcesses.apply(buffer, shards)
    return tuple(torch.where(direct, exact, expanded)
                 for exact, expanded in zip(buffer, (s_dist_sq, t_dist_sq, inner)))


def _edge_error(s_dist_sq: Tensor, t_dist_sq: Tensor, inner: Tensor, s_floor: Tensor,
                t_floor: Tensor) -> Tensor:
    """``|d / max(|d|, f) - e / max(|e|, f)|^2`` per edge from ``|d|^2``,
    ``|e|^2`` and ``<d, e>`` (all of shape (N, M))."""
    s_divisor_sq = s_dist_sq.clamp_min(s_floor.pow(2))
    t_divisor_sq = t_dist_sq.clamp_min(t_floor.pow(2))
    return (s_dist_sq / s_divisor_sq + t_dist_sq / t_divisor_sq
            - 2 * inner * (s_divisor_sq * t_divisor_sq).rsqrt())


# -- the terms ---------------------------------------------------------------

def _centred_square_sums(logits: Tensor) -> Tensor:
    """Per row, the sum of squares after removing the row's mean (the parts of
    :func:`~.edges.logit_scale`), shape (B,) from (B, C)."""
    return (logits - logits.mean(1, keepdim=True)).pow(2).sum(1)


def sharded_vrm_terms(student: Tensor, student_virtual: Tensor, teacher: Tensor,
                      teacher_virtual: Tensor, shards: VertexShards,
                      keep_percentile: float = 95.0, joint_entropy_mode: str = 'sum',
                      ic_edges: str = 'cross', relation: str = 'vector', penalty: str = 'l2',
                      impl: str = 'fused', huber_delta: float = 1.0,
                      chunk_size: Optional[int] = None, edge_floor: float = 0.0,
                      short_edges: str = 'match') -> VRMTerms:
    """:func:`~.vrm.vrm_terms` of the graph over every process's rows, from this
    process's rows; every process of ``shards.group`` must call it alike.

    Args:
        student (Tensor): This process's student logits, real view, shape (B_r, C).
        student_virtual (Tensor): Student logits, virtual view, shape (B_r, C).
        teacher (Tensor): Teacher logits, real view, shape (B_r, C). Detached here.
        teacher_virtual (Tensor): Teacher logits, virtual view, shape (B_r, C).
        shards (VertexShards): The layout; ``shards.counts[shards.rank] == B_r``.
        Others: as in :func:`~.vrm.vrm_terms`; ``relation='vector'`` with
            ``penalty='l2'`` only.

    Returns:
        VRMTerms: The whole graph's terms and statistics, equal on every
        process, except ``pruned``: this process's rows of it, shape (B_r, N)
        (its real vertices against every virtual vertex, in rank order).
    """
    if relation != 'vector' or penalty != 'l2':
        raise ValueError("the sharded graph computes relation='vector' with the 'l2' penalty "
                         f"only, got relation={relation!r}, penalty={penalty!r}: gather the "
                         "vertices replicated (gather_vertices='replicated') instead")
    if short_edges not in SHORT_EDGE_MODES:
        raise ValueError(f'short_edges must be one of {SHORT_EDGE_MODES}, got {short_edges!r}')
    if student.shape[0] != shards.counts[shards.rank]:
        raise ValueError(f'this process holds {student.shape[0]} vertices but the layout '
                         f'gives it {shards.counts[shards.rank]}')
    teacher, teacher_virtual = teacher.detach(), teacher_virtual.detach()
    total = shards.total
    if total < 2:
        return edgeless_terms(student, student_virtual, total)
    num_classes = student.shape[1]

    # Every process's virtual rows, and per vertex the teacher's share of its logit scale.
    gathered = _RowsGatheredForShards.apply(torch.cat([
        student_virtual, teacher_virtual,
        (_centred_square_sums(teacher) + _centred_square_sums(teacher_virtual))[:, None]], 1),
        shards)
    all_student_virtual, all_teacher_virtual, scale_sums = gathered.split(
        [num_classes, num_classes, 1], 1)
    scale = (scale_sums.detach().sum() / (2 * total * num_classes)).sqrt()

    entropy = joint_entropy(student, all_student_virtual.detach(), joint_entropy_mode)
    threshold = sharded_kept_entropy_threshold(entropy, total * total, keep_percentile,
                                               shards.group)
    kept = entropy <= threshold

    # Inter-sample rows: this process's real vertices against all virtual ones.
    sample_floor = edge_length_floor(scale, num_classes, edge_floor)
    teacher_long = long_edge_mask(teacher, all_teacher_virtual, sample_floor)
    in_loss = kept & teacher_long if short_edges == 'drop' and edge_floor > 0 else kept
    unit = teacher_long & long_edge_mask(student, all_student_virtual, sample_floor)
    if impl == 'fused':
        error = edge_matching_error_fused(student, all_student_virtual, teacher,
                                          all_teacher_virtual, sample_floor, sample_floor)
    else:
        error = edge_matching_error_reference(student, all_student_virtual, teacher,
                                              all_teacher_virtual, 'l2', huber_delta,
                                              chunk_size, sample_floor, sample_floor)

    # Inter-class graph: this process's coordinates of the class vertices.
    s_src, s_dst, class_mask = inter_class_vertices(student, student_virtual, ic_edges)
    t_src, t_dst, _ = inter_class_vertices(teacher, teacher_virtual, ic_edges)
    class_sums = _inner_product_sums(s_src, s_dst, t_src, t_dst)

    # The one all-reduce of the step, in float64: the edge counts exceed
    # float32's exact integers past 4096 vertices.
    sample_sums = [(error * in_loss).sum(), kept.sum(), in_loss.sum(), (unit & in_loss).sum(),
                   entropy.sum()]
    parts = sample_sums + class_sums
    reduced = _SummedOverProcesses.apply(
        torch.cat([part.reshape(-1).double() for part in parts]), shards)
    reduced = list(reduced.split([part.numel() for part in parts]))
    error_sum, num_kept, num_in_loss, num_unit, entropy_sum = reduced[:len(sample_sums)]
    class_sums = [total_sum.reshape(part.shape) for total_sum, part
                  in zip(reduced[len(sample_sums):], class_sums)]

    num_edges = total * total
    inter_sample = (error_sum / num_in_loss.clamp_min(1)).to(error.dtype).reshape(())
    unit_sample = (num_unit / num_in_loss if num_in_loss > 0
                   else torch.full_like(num_unit, float('nan')))
    dropped_sample = (num_kept - num_in_loss) / num_kept.clamp_min(1)

    edge_dim = total * (2 if ic_edges == 'concat' else 1)
    class_floor = edge_length_floor(scale, edge_dim, edge_floor).double()
    s_dist_sq, t_dist_sq, inner = _inter_class_inner_products(
        class_sums, s_src, s_dst, t_src, t_dst, class_floor, class_floor, shards)
    class_error = _edge_error(s_dist_sq, t_dist_sq, inner, class_floor, class_floor)
    floor_sq = class_floor.pow(2)
    class_teacher_long = t_dist_sq >= floor_sq
    class_unit = class_teacher_long & (s_dist_sq.detach() >= floor_sq)
    if class_mask is None:
        class_mask = torch.ones_like(class_unit)
    class_in_loss = class_mask
    if short_edges == 'drop' and edge_floor > 0:
        class_in_loss = class_mask & class_teacher_long
    inter_class = ((class_error * class_in_loss).sum()
                   / class_in_loss.sum().clamp_min(1)).to(error.dtype)
    unit_class = (class_unit[class_in_loss].float().mean() if class_in_loss.any()
                  else error.new_tensor(float('nan')))
    dropped_class = (class_mask & ~class_in_loss).sum() / class_mask.sum().clamp_min(1)

    # In the dtypes of the unsharded terms: shares in float32, entropies as the logits.
    def share(value: Tensor) -> Tensor:
        return value.detach().float().reshape(())

    def entropy_statistic(value: Tensor) -> Tensor:
        return value.detach().to(error.dtype).reshape(())

    return VRMTerms(inter_sample, inter_class, share(num_kept / num_edges),
                    entropy_statistic(entropy_sum / num_edges),
                    entropy_statistic(threshold.clamp_min(0)), ~kept, share(unit_sample),
                    share(unit_class), share(dropped_sample), share(dropped_class))
