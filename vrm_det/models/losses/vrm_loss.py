"""The VRM loss module."""
from typing import Dict, Optional

import torch
from torch import Tensor

from vrm_det.functional import DEFAULT_EDGE_FLOOR, kd_divergence, vrm_terms
from vrm_det.functional.edges import EDGE_PENALTIES, SHORT_EDGE_MODES
from vrm_det.functional.pruning import JOINT_ENTROPY_MODES
from vrm_det.functional.validation import check_choice
from vrm_det.functional.vrm import IC_EDGE_MODES, IMPLS, RELATIONS
from vrm_det.registry import register_model

from .base import DistillLoss


@register_model
class VRMLoss(DistillLoss):
    """Virtual relation matching.

    ``alpha * L_is + beta * L_ic (+ kd_weight * KD)``, where ``L_is`` and
    ``L_ic`` match the student's inter-sample and inter-class relation graphs
    (real view against virtual view) to the teacher's; see
    :func:`vrm_det.functional.vrm_terms`.

    Args:
        alpha (float): Weight of the inter-sample term.
        beta (float): Weight of the inter-class term.
        keep_percentile (float): Percent of the inter-sample edges kept each
            step: those whose student joint entropy lies above this percentile
            of the batch are pruned (the paper's m, set conservatively).
        joint_entropy (str): ``'sum'`` (independent endpoints) or ``'cross'``.
        ic_edges (str): ``'cross'`` (real class column against virtual class
            column) or ``'concat'`` (columns of the stacked views, upper
            triangle).
        relation (str): ``'vector'`` edges, or ``'gram'`` (one cosine per edge).
        loss (str): Per-edge penalty, ``'l2'`` or ``'huber'``.
        impl (str): ``'auto'`` (fused where it applies, else reference),
            ``'fused'`` or ``'reference'``.
        kd_weight (float): Weight of an instance-matching KD term on both
            views (an ablation; 0 disables it).
        kd_temperature (float): Temperature of that KD term.
        huber_delta (float): Threshold of the Huber penalty.
        chunk_size (int, optional): Row chunk of the reference implementation.
        edge_floor (float): Edge-length floor relative to the teacher's logit
            scale: edges are divided by ``max(|d|, floor)``, which bounds the
            gradient where a prediction and its virtual view (nearly)
            coincide; see :func:`vrm_det.functional.edge_length_floor`. 0 (the
            default) is the paper's loss, every edge a unit vector; a floor is
            a deviation from it (detection configs set one).
        short_edges (str): With a floor, an edge whose teacher edge is
            shorter than it is matched as a difference (``'match'``) or left
            out of the loss (``'drop'``).

    Besides the losses, every step logs ``unit_edge_share_sample`` and
    ``unit_edge_share_class``: the share of the edges in each term that are
    matched as unit vectors on both sides (1 without a floor), and with
    ``short_edges='drop'`` the shares of edges dropped
    (``short_dropped_share_sample`` / ``_class``).
    """
    uses_virtual_view = True

    def __init__(self, alpha: float = 128.0, beta: float = 32.0,
                 keep_percentile: float = 95.0, joint_entropy: str = 'sum',
                 ic_edges: str = 'cross', relation: str = 'vector', loss: str = 'l2',
                 impl: str = 'auto', kd_weight: float = 0.0, kd_temperature: float = 4.0,
                 huber_delta: float = 1.0, chunk_size: Optional[int] = None,
                 edge_floor: float = DEFAULT_EDGE_FLOOR, short_edges: str = 'match') -> None:
        super().__init__()
        check_choice('joint_entropy', joint_entropy, JOINT_ENTROPY_MODES)
        check_choice('ic_edges', ic_edges, IC_EDGE_MODES)
        check_choice('relation', relation, RELATIONS)
        check_choice('loss', loss, EDGE_PENALTIES)
        check_choice('impl', impl, ('auto',) + IMPLS)
        check_choice('short_edges', short_edges, SHORT_EDGE_MODES)
        if not 0 <= keep_percentile <= 100:
            raise ValueError(f'keep_percentile={keep_percentile} must lie in [0, 100] '
                             '(the percent of edges kept; 100 keeps every edge)')
        if short_edges == 'drop' and not edge_floor:
            raise ValueError("short_edges='drop' drops edges shorter than the floor: set "
                             'edge_floor > 0 (e.g. 0.5), or leave short_edges at its default')
        if relation == 'gram' and (edge_floor or short_edges == 'drop'):
            raise ValueError("relation='gram' compares cosines, which no edge floor changes: "
                             "leave edge_floor at 0 and short_edges at 'match'")
        if impl == 'fused' and (loss != 'l2' or relation != 'vector'):
            raise ValueError("impl='fused' needs loss='l2' and relation='vector'; "
                             f"got loss={loss!r}, relation={relation!r}: use impl='auto' "
                             "or impl='reference'")
        if not 0 <= edge_floor <= 1:
            raise ValueError(f'edge_floor={edge_floor} must lie in [0, 1] (a fraction of the '
                             f'logit scale; default {DEFAULT_EDGE_FLOOR})')
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f'chunk_size={chunk_size} must be a positive row count or None')
        if impl == 'auto':
            impl = 'fused' if loss == 'l2' and relation == 'vector' else 'reference'
        self.alpha, self.beta = alpha, beta
        #: Label of background vertices. A detection distiller sets it (mmdet's
        #: RoI heads label background ``num_classes``); with it, the share of
        #: foreground vertices among the endpoints of pruned edges is logged.
        self.background_label: Optional[int] = None
        self.kd_weight, self.kd_temperature = kd_weight, kd_temperature
        self.options = dict(keep_percentile=keep_percentile,
                            joint_entropy_mode=joint_entropy, ic_edges=ic_edges,
                            relation=relation, penalty=loss, impl=impl,
                            huber_delta=huber_delta, chunk_size=chunk_size,
                            edge_floor=edge_floor, short_edges=short_edges)

    @property
    def impl(self) -> str:
        """The implementation in use, ``'fused'`` or ``'reference'``."""
        return self.options['impl']

    def compute(self, student: Tensor, teacher: Tensor, student_virtual: Optional[Tensor],
                teacher_virtual: Optional[Tensor],
                labels: Optional[Tensor]) -> Dict[str, Tensor]:
        terms = vrm_terms(student, student_virtual, teacher, teacher_virtual, **self.options)
        losses = dict(loss_vrm_sample=self.alpha * terms.inter_sample,
                      loss_vrm_class=self.beta * terms.inter_class)
        if self.kd_weight:
            kd = (kd_divergence(student, teacher, self.kd_temperature)
                  + kd_divergence(student_virtual, teacher_virtual, self.kd_temperature)) / 2
            losses['loss_kd'] = self.kd_weight * kd
        losses.update(vrm_sample_term=terms.inter_sample.detach(),
                      vrm_class_term=terms.inter_class.detach(),
                      kept_fraction=terms.kept_fraction,
                      joint_entropy=terms.joint_entropy,
                      joint_entropy_threshold=terms.entropy_threshold)
        # A graph whose loss took no edge has no share to log (NaN).
        for graph, share in (('sample', terms.unit_edge_share_sample),
                             ('class', terms.unit_edge_share_class)):
            if not torch.isnan(share):
                losses[f'unit_edge_share_{graph}'] = share
        if self.options['short_edges'] == 'drop':
            losses.update(short_dropped_share_sample=terms.short_dropped_sample,
                          short_dropped_share_class=terms.short_dropped_class)
        if labels is not None and self.background_label is not None and terms.pruned.any():
            # Each pruned edge has two endpoints: real vertex i, virtual vertex j.
            rows, cols = terms.pruned.nonzero(as_tuple=True)
            endpoints = torch.cat([labels[rows], labels[cols]])
            losses['pruned_foreground_share'] = (
                endpoints != self.background_label).float().mean()
        return losses
