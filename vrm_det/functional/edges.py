"""Relation-graph edges and the error between a student and a teacher graph.

An edge joins a source vertex ``src[i]`` to a destination vertex ``dst[j]``;
its value is the L2-normalised difference ``(src[i] - dst[j]) / ||src[i] - dst[j]||``.
The matching error of an edge is a penalty on the difference between the
student's and the teacher's unit edge vectors.

Two ways to compute the ``(n, m)`` matrix of per-edge errors are provided:

* :func:`edge_matching_error_reference` materialises the ``(n, m, d)`` edge
  tensors; it is the readable definition and supports every penalty.
* :func:`edge_matching_error_fused` never builds an ``(n, m, d)`` tensor: for
  the squared-distance penalty the error of edge ``(i, j)`` is
  ``|u|^2 + |v|^2 - 2 <u, v>`` with ``u``, ``v`` the unit edges, and every term
  expands into row norms and ``(n, m)`` matrix products. The edges whose
  expansion would cancel (endpoints far closer together than to the vertex
  mean, and shorter than the floor) are computed directly.

Edge-length floor
-----------------
The unit edge ``d / |d|`` has a Jacobian of norm ``1 / |d|``: where two
endpoints nearly coincide (a confident RoI and its own virtual view, rows of a
collapsed head) its gradient grows without bound. Every edge is therefore
divided by ``max(|d|, floor)`` instead: an edge at least ``floor`` long is a
unit vector as before, a shorter one keeps its length in units of the floor,
and no edge's gradient exceeds ``1 / floor``. :func:`edge_length_floor`
sets the floor relative to a logit scale (VRM takes the teacher's, for both
graphs, so the loss stays invariant to a temperature shared by both models);
the reference, the fused computation and the tests use it alike.

The floor is this project's deviation from the paper, off by default
(``relative_floor=0``: every edge a unit vector, as the paper defines it).
:func:`long_edge_mask` tells which edges a floor leaves as unit vectors.

Everything here is plain torch and knows nothing about detectors.
"""
import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .memory import recomputed_in_backward

EDGE_PENALTIES = ('l2', 'huber')

# Below this norm an edge is treated as the zero vector (its endpoints coincide).
_ZERO_NORM = 1e-12
# An expanded squared distance |a - b|^2 = |a|^2 + |b|^2 - 2<a, b> carries a
# rounding error of about eps * (|a|^2 + |b|^2). The error of an edge divides
# it by max(|a - b|, floor)^2, so an edge loses about log10(ratio) digits where
# (|a|^2 + |b|^2) / max(|a - b|, floor)^2 = ratio. Edges above this ratio (two
# digits lost) are computed from the difference itself.
_CANCELLATION_RATIO = 100.0

#: Default edge-length floor: 0, the paper's unit edges. A floor is a
#: deviation from the paper (see :func:`edge_length_floor`); detection configs
#: set one (docs/user_guide.md, "Stability"), classification runs without.
DEFAULT_EDGE_FLOOR = 0.0

#: What becomes of an edge shorter than the floor: ``'match'`` matches it as a
#: difference in units of the floor, ``'drop'`` leaves it out of the loss when
#: the *teacher's* edge is that short (its direction is noise).
SHORT_EDGE_MODES = ('match', 'drop')

Floor = Union[float, Tensor]


def logit_scale(*logits: Tensor) -> Tensor:
    """Spread of the logits: the RMS of every entry after removing its row's mean.

    Removing the row mean makes the scale blind to the per-row shift a softmax
    ignores; unlike the spread between rows it stays large when all rows
    collapse onto one saturated prediction. Detached.

    Args:
        *logits (Tensor): Logit matrices of shape (B, C) of one model.

    Returns:
        Tensor: A scalar, 0 for no rows.
    """
    rows = torch.cat([x.detach() for x in logits])
    if rows.numel() == 0:
        return rows.new_zeros(())
    return (rows - rows.mean(1, keepdim=True)).pow(2).mean().sqrt()


def edge_length_floor(scale: Tensor, edge_dim: int,
                      relative_floor: float = DEFAULT_EDGE_FLOOR) -> Tensor:
    """The floor of the edge lengths of a graph whose edges live in R^edge_dim.

    ``relative_floor * sqrt(edge_dim) * scale``, never below the smallest
    norm treated as non-zero.

    Args:
        scale (Tensor): The model's :func:`logit_scale`.
        edge_dim (int): Length of an edge vector (C for inter-sample edges,
            B for inter-class ones).
        relative_floor (float): 0 disables the floor (the paper's unit
            edges); 0.5 treats edges shorter than about a third of the
            distance between two unrelated rows (``sqrt(2 D) * scale``) as
            differences.
    """
    return (relative_floor * math.sqrt(edge_dim) * scale).clamp_min(_ZERO_NORM)


@torch.no_grad()
def long_edge_mask(src: Tensor, dst: Tensor, floor: Floor = 0.0) -> Tensor:
    """Which edges are at least ``floor`` long, i.e. taken as unit vectors.

    Lengths come from the expansion of the centred vertices (``O(N M)``
    memory), except where its rounding could put an edge on the wrong side
    of the floor (the edges :func:`direct_edge_mask` computes directly):
    those are measured from their difference, as the loss does.

    Args:
        src (Tensor): Source vertices, shape (N, D).
        dst (Tensor): Destination vertices, shape (M, D).
        floor (float | Tensor): The edge-length floor; 0 marks every edge
            longer than the 1e-12 guard.

    Returns:
        Tensor: Bool, shape (N, M).
    """
    src, dst = _centred(src.detach(), dst.detach())
    dist_sq, scale = _expanded_sq_distance(src, dst)
    floor_sq = _floored(floor, src).pow(2)
    rows, cols = _ill_conditioned(dist_sq.clamp_min(floor_sq), scale).nonzero(as_tuple=True)
    if len(rows):
        dist_sq[rows, cols] = (src[rows] - dst[cols]).pow(2).sum(1)
    return dist_sq >= floor_sq


def _floored(floor: Floor, like: Tensor) -> Tensor:
    floor = torch.as_tensor(floor, dtype=like.dtype, device=like.device)
    return floor.detach().clamp_min(_ZERO_NORM)


def unit_edges(src: Tensor, dst: Tensor, floor: Floor = 0.0) -> Tensor:
    """All edges from ``src`` rows to ``dst`` rows as unit vectors.

    Args:
        src (Tensor): Source vertices, shape (N, D).
        dst (Tensor): Destination vertices, shape (M, D).
        floor (float | Tensor): Edges are divided by ``max(|d|, floor)``.

    Returns:
        Tensor: Shape (N, M, D); entry ``[i, j]`` is ``d = src[i] - dst[j]``
        divided by ``max(|d|, floor)`` (a zero difference stays zero).
    """
    return _divide_by_floored_norm(src[:, None, :] - dst[None, :, :], floor)


def _divide_by_floored_norm(edges: Tensor, floor: Floor) -> Tensor:
    norm = torch.linalg.vector_norm(edges, dim=-1, keepdim=True)
    return edges / norm.clamp_min(_floored(floor, edges))


def edge_penalty(diff: Tensor, penalty: str = 'l2', huber_delta: float = 1.0) -> Tensor:
    """Penalty of edge differences, summed over the last dimension.

    Args:
        diff (Tensor): Student edge minus teacher edge, shape (..., D).
        penalty (str): ``'l2'`` (squared distance) or ``'huber'``.
        huber_delta (float): Threshold of the Huber penalty.

    Returns:
        Tensor: Shape (...,).
    """
    if penalty == 'l2':
        return diff.pow(2).sum(-1)
    if penalty == 'huber':
        return F.huber_loss(diff, torch.zeros_like(diff), reduction='none',
                            delta=huber_delta).sum(-1)
    raise ValueError(f"penalty must be one of {EDGE_PENALTIES}, got {penalty!r}")


def _matching_error_block(s_src, s_dst, t_src, t_dst, penalty, huber_delta, s_floor, t_floor):
    diff = unit_edges(s_src, s_dst, s_floor) - unit_edges(t_src, t_dst, t_floor)
    return edge_penalty(diff, penalty, huber_delta)


def edge_matching_error_reference(s_src: Tensor, s_dst: Tensor, t_src: Tensor,
                                  t_dst: Tensor, penalty: str = 'l2',
                                  huber_delta: float = 1.0,
                                  chunk_size: Optional[int] = None,
                                  s_floor: Floor = 0.0, t_floor: Floor = 0.0) -> Tensor:
    """Per-edge matching error, computed from materialised edge tensors.

    Args:
        s_src (Tensor): Student source vertices, shape (N, D).
        s_dst (Tensor): Student destination vertices, shape (M, D).
        t_src (Tensor): Teacher source vertices, shape (N, D).
        t_dst (Tensor): Teacher destination vertices, shape (M, D).
        penalty (str): ``'l2'`` or ``'huber'``, see :func:`edge_penalty`.
        huber_delta (float): Threshold of the Huber penalty.
        chunk_size (int, optional): Build the edges for this many source rows
            at a time and recompute them in the backward pass, so that peak
            memory is ``O(chunk_size * M * D)`` instead of ``O(N * M * D)``.
        s_floor (float | Tensor): Edge-length floor of the student graph.
        t_floor (float | Tensor): Edge-length floor of the teacher graph.

    Returns:
        Tensor: Shape (N, M), the error of edge ``(i, j)``.
    """
    if chunk_size is None or chunk_size >= s_src.shape[0]:
        return _matching_error_block(s_src, s_dst, t_src, t_dst, penalty, huber_delta,
                                     s_floor, t_floor)
    blocks = []
    for start in range(0, s_src.shape[0], chunk_size):
        rows = slice(start, start + chunk_size)
        blocks.append(recomputed_in_backward(
            _matching_error_block, s_src[rows], s_dst, t_src[rows], t_dst, penalty,
            huber_delta, s_floor, t_floor))
    return torch.cat(blocks)


def _centred(src: Tensor, dst: Tensor):
    """Shift both vertex sets by their common mean.

    Differences ``src[i] - dst[j]`` are unchanged (so is the gradient), but the
    norms entering the expansion shrink, which limits cancellation.
    """
    shift = torch.cat([src, dst]).mean(0, keepdim=True).detach()
    return src - shift, dst - shift


def _expanded_sq_distance(src: Tensor, dst: Tensor):
    """``|src[i] - dst[j]|^2`` by expansion, and ``|src[i]|^2 + |dst[j]|^2``."""
    scale = src.pow(2).sum(1)[:, None] + dst.pow(2).sum(1)[None, :]
    return torch.addmm(scale, src, dst.T, alpha=-2), scale


@torch.no_grad()
def _ill_conditioned(divisor_sq: Tensor, scale: Tensor) -> Tensor:
    """Edges whose expanded error loses more than two digits, from their
    ``max(|d|, floor)^2`` and the ``|src[i]|^2 + |dst[j]|^2`` of the expansion.

    Below the floor an edge's error is ``|d - e|^2 / floor^2``: the rounding
    of ``|d|^2`` counts against ``floor^2``, not against ``|d|^2``, so short
    edges are well conditioned whenever the floor is (clustered rows, an RoI
    and its own virtual view). Only edges shorter than both the floor and
    the vertices' spread need the difference itself, and so do edges of zero
    length without a floor (their direction is undefined).
    """
    return (divisor_sq * _CANCELLATION_RATIO <= scale) | (divisor_sq <= _ZERO_NORM**2)


@torch.no_grad()
def direct_edge_mask(s_src: Tensor, s_dst: Tensor, t_src: Tensor, t_dst: Tensor,
                     s_floor: Floor = 0.0, t_floor: Floor = 0.0) -> Tensor:
    """The edges :func:`edge_matching_error_fused` computes from their difference.

    Arguments as in :func:`edge_matching_error_fused`.

    Returns:
        Tensor: Bool, shape (N, M).
    """
    masks = []
    for src, dst, floor in ((s_src, s_dst, s_floor), (t_src, t_dst, t_floor)):
        dist_sq, scale = _expanded_sq_distance(*_centred(src, dst))
        masks.append(_ill_conditioned(dist_sq.clamp_min(_floored(floor, src).pow(2)), scale))
    return masks[0] | masks[1]


class _ExpandedEdgeError(torch.autograd.Function):
    """Per-edge error of centred vertex sets by expansion, and the mask of the
    edges too ill-conditioned for it (their error is left 0 here).

    The gradient is written out: through autograd every elementwise step
    would keep an (N, M) tensor and take a pass of its own backward.
    """

    @staticmethod
    def forward(ctx, s_src, s_dst, t_src, t_dst, s_floor, t_floor):
        s_dist_sq, s_scale = _expanded_sq_distance(s_src, s_dst)
        t_dist_sq, t_scale = _expanded_sq_distance(t_src, t_dst)
        # max(|d|, floor)^2, set to 1 at the direct edges (whose values are
        # replaced) so that nothing there divides by zero.
        s_divisor_sq = s_dist_sq.clamp_min(s_floor.pow(2))
        t_divisor_sq = t_dist_sq.clamp_min(t_floor.pow(2))
        direct = _ill_conditioned(s_divisor_sq, s_scale)
        direct |= _ill_conditioned(t_divisor_sq, t_scale)
        del s_scale, t_scale
        s_divisor_sq.masked_fill_(direct, 1)
        t_divisor_sq.masked_fill_(direct, 1)
        # <d, e> / (max(|d|, floor) max(|e|, floor)) for the student edge
        # d = s_src[i] - s_dst[j] and the teacher edge e = t_src[i] - t_dst[j]
        rsqrt_product = (s_divisor_sq * t_divisor_sq).rsqrt_()
        normalised_inner = torch.addmm(
            (s_src * t_src).sum(1)[:, None] + (s_dst * t_dst).sum(1)[None, :],
            s_src, t_dst.T, alpha=-1).addmm_(t_src, s_dst.T, alpha=-1).mul_(rsqrt_product)
        # |d / max(|d|, floor)|^2 + |e / max(|e|, floor)|^2 - 2 <d, e> / (...)
        error = s_dist_sq.div_(s_divisor_sq).add_(t_dist_sq.div_(t_divisor_sq))
        error.sub_(normalised_inner, alpha=2).masked_fill_(direct, 0)
        ctx.save_for_backward(s_src, s_dst, t_src, t_dst, s_floor, t_floor, s_divisor_sq,
                              t_divisor_sq, rsqrt_product, normalised_inner, direct)
        ctx.mark_non_differentiable(direct)
        return error, direct

    @staticmethod
    def backward(ctx, grad, _):
        (s_src, s_dst, t_src, t_dst, s_floor, t_floor, s_divisor_sq, t_divisor_sq,
         rsqrt_product, normalised_inner, direct) = ctx.saved_tensors
        grad = grad.masked_fill(direct, 0)
        # d error / d <d, e> is -2 * rsqrt_product; the -2 is applied to the (N, D) results.
        grad_inner = grad * rsqrt_product
        grads = [None] * 6
        if any(ctx.needs_input_grad[:2]):
            grad_dist = _dist_sq_weight(grad, s_divisor_sq, s_floor, normalised_inner)
            grads[:2] = _vertex_grads(grad_dist, grad_inner, s_src, s_dst, t_src, t_dst)
        if any(ctx.needs_input_grad[2:4]):
            grad_dist = _dist_sq_weight(grad, t_divisor_sq, t_floor, normalised_inner)
            grads[2:4] = _vertex_grads(grad_dist, grad_inner, t_src, t_dst, s_src, s_dst)
        return tuple(grads)


def _dist_sq_weight(grad, divisor_sq, floor, normalised_inner):
    """``grad * d error / d |d|^2``: above the floor only the normalisation of
    the inner product depends on ``|d|``, below it only ``|d|^2 / floor^2``."""
    floor_sq = floor.pow(2)
    weight = normalised_inner / divisor_sq
    return weight.masked_fill_(divisor_sq <= floor_sq, floor_sq.reciprocal()).mul_(grad)


def _vertex_grads(grad_dist, grad_inner, src, dst, other_src, other_dst):
    """Gradients in src and dst of ``sum grad_dist * |src[i] - dst[j]|^2
    - 2 grad_inner * <src[i] - dst[j], other_src[i] - other_dst[j]>``."""
    grad_src = 2 * (src * grad_dist.sum(1)[:, None] - grad_dist @ dst
                    - other_src * grad_inner.sum(1)[:, None] + grad_inner @ other_dst)
    grad_dst = 2 * (dst * grad_dist.sum(0)[:, None] - grad_dist.T @ src
                    - other_dst * grad_inner.sum(0)[:, None] + grad_inner.T @ other_src)
    return grad_src, grad_dst


def edge_matching_error_fused(s_src: Tensor, s_dst: Tensor, t_src: Tensor,
                              t_dst: Tensor, s_floor: Floor = 0.0,
                              t_floor: Floor = 0.0) -> Tensor:
    """Per-edge squared-distance matching error without ``(N, M, D)`` tensors.

    Equal to ``edge_matching_error_reference(..., penalty='l2')`` in value and
    gradient, in ``O(N * M + (N + M) * D)`` memory. The edges of
    :func:`direct_edge_mask` are computed from their differences.

    Args:
        s_src (Tensor): Student source vertices, shape (N, D).
        s_dst (Tensor): Student destination vertices, shape (M, D).
        t_src (Tensor): Teacher source vertices, shape (N, D).
        t_dst (Tensor): Teacher destination vertices, shape (M, D).
        s_floor (float | Tensor): Edge-length floor of the student graph.
        t_floor (float | Tensor): Edge-length floor of the teacher graph.

    Returns:
        Tensor: Shape (N, M), the error of edge ``(i, j)``.
    """
    s_floor, t_floor = _floored(s_floor, s_src), _floored(t_floor, t_src)
    error, direct = _ExpandedEdgeError.apply(*_centred(s_src, s_dst), *_centred(t_src, t_dst),
                                             s_floor, t_floor)
    # Direct edges come from the uncentred inputs: centring rounds them.
    rows, cols = direct.nonzero(as_tuple=True)
    if not len(rows):
        return error
    s_edge = _divide_by_floored_norm(s_src[rows] - s_dst[cols], s_floor)
    t_edge = _divide_by_floored_norm(t_src[rows] - t_dst[cols], t_floor)
    return error.index_put((rows, cols), edge_penalty(s_edge - t_edge))


def cosine_gram(src: Tensor, dst: Tensor) -> Tensor:
    """Gram matrix of cosine similarities, shape (N, M), from (N, D) and (M, D)."""
    return F.normalize(src, dim=-1, eps=_ZERO_NORM) @ F.normalize(dst, dim=-1, eps=_ZERO_NORM).T


def gram_matching_error(s_src: Tensor, s_dst: Tensor, t_src: Tensor, t_dst: Tensor,
                        penalty: str = 'l2', huber_delta: float = 1.0) -> Tensor:
    """Per-edge error when each edge is encoded by one Gram-matrix scalar.

    The edge ``(i, j)`` holds ``cos(src[i], dst[j])`` instead of a vector; this
    is the ablation in which the secondary dimension is collapsed.

    Args:
        s_src, s_dst, t_src, t_dst (Tensor): As in
            :func:`edge_matching_error_reference`.
        penalty (str): ``'l2'`` or ``'huber'``.
        huber_delta (float): Threshold of the Huber penalty.

    Returns:
        Tensor: Shape (N, M).
    """
    diff = cosine_gram(s_src, s_dst) - cosine_gram(t_src, t_dst)
    return edge_penalty(diff.unsqueeze(-1), penalty, huber_delta)
