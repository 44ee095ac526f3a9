"""Virtual relation matching (VRM) on logits.

Four logit matrices of shape (B, C) enter: student and teacher, each on the
real and on the virtual (augmented) view. Two graphs are built per model:

* inter-sample: edges from every real sample to every virtual sample,
  ``(S[i] - S~[j]) / |S[i] - S~[j]|`` (B x B edges in R^C);
* inter-class: edges between class columns, by default real column against
  virtual column, ``(S[:, a] - S~[:, b]) / |...|`` (C x C edges in R^B).

The student matches the teacher's unit edges; inter-sample edges whose
student joint entropy lies above a percentile are pruned first.

Deviation from the paper, off by default: edges may be divided by
``max(|d|, floor)`` with a floor relative to the teacher's logit scale (see
:mod:`.edges`), so near-coincident endpoints cannot blow up the gradient; an
edge whose teacher edge is shorter than the floor is then either matched as a
difference (``short_edges='match'``) or left out (``'drop'``). The share of
the loss's edges that are unit vectors on both sides is returned per graph.
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from .edges import (
    DEFAULT_EDGE_FLOOR,
    SHORT_EDGE_MODES,
    edge_length_floor,
    edge_matching_error_fused,
    edge_matching_error_reference,
    gram_matching_error,
    logit_scale,
    long_edge_mask,
)
from .pruning import joint_entropy, kept_entropy_threshold
from .shards import active_vertex_shards

IC_EDGE_MODES = ('cross', 'concat')
RELATIONS = ('vector', 'gram')
IMPLS = ('fused', 'reference')


class VRMTerms(NamedTuple):
    """Unweighted VRM terms of one batch."""
    inter_sample: Tensor  #: mean matching error over kept inter-sample edges
    inter_class: Tensor  #: mean matching error over inter-class edges
    kept_fraction: Tensor  #: fraction of inter-sample edges kept (no grad)
    joint_entropy: Tensor  #: mean joint entropy of inter-sample edges (no grad)
    entropy_threshold: Tensor  #: largest joint entropy of a kept edge (0 if none)
    pruned: Tensor  #: (B, B) bool, True for the pruned inter-sample edges
    #: share of the inter-sample edges in the loss that are unit vectors on
    #: both sides (student and teacher edge at least the floor long; no grad);
    #: NaN when the loss takes no edge (nothing to measure)
    unit_edge_share_sample: Tensor
    unit_edge_share_class: Tensor  #: the same for the inter-class graph
    #: share of the kept inter-sample edges left out for a short teacher edge
    #: (``short_edges='drop'``; 0 otherwise)
    short_dropped_sample: Tensor
    short_dropped_class: Tensor  #: the same for the inter-class graph


def inter_class_vertices(real: Tensor, virtual: Tensor, mode: str = 'cross'):
    """Vertices and edge selection of the inter-class graph.

    Args:
        real (Tensor): Logits of the real view, shape (B, C).
        virtual (Tensor): Logits of the virtual view, shape (B, C).
        mode (str): ``'cross'``: real class columns against virtual class
            columns (C x C edges in R^B). ``'concat'``: the columns of the
            stacked ``[real; virtual]`` against each other, upper triangle
            only (C (C - 1) / 2 edges in R^2B).

    Returns:
        tuple: ``(src, dst, edge_mask)``; ``src`` (C, D) and ``dst`` (C, D)
        are the vertex sets, ``edge_mask`` (C, C) bool selects the edges, or
        None for all of them.
    """
    if mode == 'cross':
        return real.T, virtual.T, None
    if mode == 'concat':
        stacked = torch.cat([real, virtual]).T
        num_classes = stacked.shape[0]
        upper = torch.ones(num_classes, num_classes, dtype=torch.bool,
                           device=real.device).triu(1)
        return stacked, stacked, upper
    raise ValueError(f"ic_edges must be one of {IC_EDGE_MODES}, got {mode!r}")


def relation_floor(teacher: Tensor, teacher_virtual: Tensor, edge_dim: int,
                   edge_floor: float = DEFAULT_EDGE_FLOOR) -> Tensor:
    """The edge-length floor of both graphs (student's and teacher's).

    Taken from the teacher's logits: the student's own scale is tiny early in
    training and after a collapse, exactly when its gradient must stay bounded.

    Args:
        teacher (Tensor): Teacher logits, real view, shape (B, C).
        teacher_virtual (Tensor): Teacher logits, virtual view, shape (B, C).
        edge_dim (int): Length of the graph's edge vectors.
        edge_floor (float): See :func:`~.edges.edge_length_floor`.
    """
    return edge_length_floor(logit_scale(teacher, teacher_virtual), edge_dim, edge_floor)


def masked_mean(values: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Mean of ``values`` where ``mask`` is True (all when None); 0 if none.

    The result stays connected to ``values`` even when nothing is selected.
    """
    if mask is None:
        return values.mean() if values.numel() else values.sum() * 0
    return (values * mask).sum() / mask.sum().clamp_min(1)


def edgeless_terms(student: Tensor, student_virtual: Tensor, num_columns: int) -> VRMTerms:
    """The terms of a graph without edges: zero losses connected to the
    student's logits (shape (B, C) each), nothing kept, the statistics that
    need an edge not measured (NaN); ``pruned`` has shape (B, num_columns)."""
    zero = (student.sum() + student_virtual.sum()) * 0
    nothing = zero.detach()
    pruned = torch.zeros(student.shape[0], num_columns, dtype=torch.bool, device=student.device)
    unmeasured = torch.full_like(nothing, float('nan'))
    return VRMTerms(zero, zero, nothing, nothing, nothing, pruned, unmeasured, unmeasured,
                    nothing, nothing)


def vrm_terms(student: Tensor, student_virtual: Tensor, teacher: Tensor,
              teacher_virtual: Tensor, keep_percentile: float = 95.0,
              joint_entropy_mode: str = 'sum', ic_edges: str = 'cross',
              relation: str = 'vector', penalty: str = 'l2', impl: str = 'fused',
              huber_delta: float = 1.0, chunk_size: Optional[int] = None,
              edge_floor: float = DEFAULT_EDGE_FLOOR,
              short_edges: str = 'match') -> VRMTerms:
    """Compute the unweighted VRM terms.

    Args:
        student (Tensor): Student logits, real view, shape (B, C).
        student_virtual (Tensor): Student logits, virtual view, shape (B, C).
        teacher (Tensor): Teacher logits, real view, shape (B, C). Detached here.
        teacher_virtual (Tensor): Teacher logits, virtual view, shape (B, C).
            Detached here.
        keep_percentile (float): Percent of the inter-sample edges kept: those
            whose joint entropy lies above this percentile are pruned; 100
            keeps all.
        joint_entropy_mode (str): See :func:`~.pruning.joint_entropy`.
        ic_edges (str): See :func:`inter_class_vertices`.
        relation (str): ``'vector'`` (unit edge vectors) or ``'gram'`` (one
            cosine similarity per edge, the ablation).
        penalty (str): ``'l2'`` or ``'huber'`` per-edge penalty.
        impl (str): ``'fused'`` (needs ``relation='vector'`` and
            ``penalty='l2'``) or ``'reference'`` (materialised edges).
        huber_delta (float): Threshold of the Huber penalty.
        chunk_size (int, optional): Row chunk of the reference implementation.
        edge_floor (float): Edge-length floor of both graphs, relative to
            ``sqrt(edge dimension) * logit_scale(teacher, teacher_virtual)``;
            see :func:`~.edges.edge_length_floor`. 0 (the paper's unit edges)
            leaves only a 1e-12 guard.
        short_edges (str): An edge whose teacher edge is shorter than the
            floor is matched as a difference in units of the floor
            (``'match'``) or left out of the loss (``'drop'``); no effect
            without a floor.

    Returns:
        VRMTerms: Terms are zero (and connected to the student) when B < 2.

    Inside :func:`~.shards.vertices_sharded` the logits are this process's
    rows of a graph over several processes, and the terms are that graph's
    (see :func:`~.sharded.sharded_vrm_terms`).
    """
    shards = active_vertex_shards()
    if shards is not None:
        from .sharded import sharded_vrm_terms  # it builds on this module
        return sharded_vrm_terms(student, student_virtual, teacher, teacher_virtual, shards,
                                 keep_percentile, joint_entropy_mode, ic_edges, relation,
                                 penalty, impl, huber_delta, chunk_size, edge_floor,
                                 short_edges)
    if short_edges not in SHORT_EDGE_MODES:
        raise ValueError(f'short_edges must be one of {SHORT_EDGE_MODES}, got {short_edges!r}')
    teacher, teacher_virtual = teacher.detach(), teacher_virtual.detach()
    if student.shape[0] < 2:
        return edgeless_terms(student, student_virtual, student.shape[0])

    if relation == 'gram':
        def matching_error(s_src, s_dst, t_src, t_dst, s_floor, t_floor):
            return gram_matching_error(s_src, s_dst, t_src, t_dst, penalty, huber_delta)
    elif impl == 'fused':
        if penalty != 'l2':
            raise ValueError("impl='fused' computes the 'l2' penalty only; "
                             "use impl='reference' for penalty='huber'")
        matching_error = edge_matching_error_fused
    else:
        def matching_error(s_src, s_dst, t_src, t_dst, s_floor, t_floor):
            return edge_matching_error_reference(s_src, s_dst, t_src, t_dst, penalty,
                                                 huber_delta, chunk_size, s_floor, t_floor)

    def graph_term(s_src, s_dst, t_src, t_dst, selected):
        """Mean error over the ``selected`` edges the loss takes, the share of
        those that are unit vectors on both sides, and the share of the
        selected edges dropped for a short teacher edge."""
        floor = relation_floor(teacher, teacher_virtual, s_src.shape[1], edge_floor)
        teacher_long = long_edge_mask(t_src, t_dst, floor)
        in_loss = selected
        if short_edges == 'drop' and edge_floor > 0:
            in_loss = selected & teacher_long
        unit = teacher_long & long_edge_mask(s_src, s_dst, floor)
        error = matching_error(s_src, s_dst, t_src, t_dst, floor, floor)
        dropped = (selected & ~in_loss).sum() / selected.sum().clamp_min(1)
        unit_share = (unit[in_loss].float().mean() if in_loss.any()
                      else unit.new_tensor(float('nan'), dtype=error.dtype))
        return masked_mean(error, in_loss), unit_share, dropped

    entropy = joint_entropy(student, student_virtual, joint_entropy_mode)
    threshold = kept_entropy_threshold(entropy, keep_percentile)
    kept = entropy <= threshold
    inter_sample, unit_sample, dropped_sample = graph_term(
        student, student_virtual, teacher, teacher_virtual, kept)

    s_src, s_dst, ic_mask = inter_class_vertices(student, student_virtual, ic_edges)
    t_src, t_dst, _ = inter_class_vertices(teacher, teacher_virtual, ic_edges)
    if ic_mask is None:
        ic_mask = torch.ones(s_src.shape[0], s_dst.shape[0], dtype=torch.bool,
                             device=student.device)
    inter_class, unit_class, dropped_class = graph_term(s_src, s_dst, t_src, t_dst, ic_mask)

    # The threshold is the largest kept entropy; -inf (nothing kept) logs as 0.
    return VRMTerms(inter_sample, inter_class, kept.float().mean(), entropy.mean(),
                    threshold.clamp_min(0), ~kept, unit_sample.detach(), unit_class.detach(),
                    dropped_sample.detach(), dropped_class.detach())
