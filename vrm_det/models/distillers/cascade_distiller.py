"""Distillation of a cascade detector (Cascade R-CNN): one relation graph per stage."""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from vrm_det.functional.validation import check_choice
from vrm_det.registry import register_model

from .two_stage_distiller import TwoStageDistiller

DISTILL_STAGES = ('all', 'last')


def _stage_entries(entries: Dict[str, Tensor], stage: int,
                   weight: float) -> Dict[str, Tensor]:
    """``entries`` under the stage's prefix (``s0.loss_cls``, as mmdet's
    CascadeRoIHead names its losses), the losses multiplied by ``weight``."""
    return {f's{stage}.{key}': value * weight if 'loss' in key else value
            for key, value in entries.items()}


@register_model
class CascadeDistiller(TwoStageDistiller):
    """Distil a cascade detector's RoI classification logits, stage by stage.

    The training step is :class:`TwoStageDistiller`'s, repeated over the
    stages as mmdet's ``CascadeRoIHead.loss`` repeats it:

    1. Stage 0 samples RoIs from the student's RPN proposals; stage ``k > 0``
       samples them from the previous stage's boxes, refined by the student's
       bbox head of stage ``k - 1`` (without gradient, as mmdet does), with
       stage ``k``'s assigner and sampler.
    2. The student's stage-``k`` bbox head scores the stage's RoIs on both
       views; its losses are weighted by the RoI head's
       ``stage_loss_weights[k]`` and named ``s{k}.loss_cls`` and so on.
    3. The teacher's stage-``k`` bbox head scores **the same RoIs** on both
       views (its RPN and its own cascade never run).
    4. One relation graph per distilled stage: its vertices are the stage's
       RoIs; its loss entries are named ``s{k}.loss_vrm_sample`` and so on,
       the losses weighted by ``distill_stage_weights[k]``.

    Teacher and student must have the same number of stages. Cascade Mask
    R-CNN and the pipeline's (geometric) virtual view are not supported.

    Args:
        distill_stages (str): ``'all'`` stages, or the ``'last'`` only.
        distill_stage_weights (Sequence[float], optional): One weight per
            stage for its distillation losses (a stage not distilled ignores
            its weight); None: the student's ``stage_loss_weights`` (mmdet's
            cascade configs: 1, 0.5, 0.25).

    The other options are :class:`TwoStageDistiller`'s; ``roi_vertices``
    and ``max_vertices`` apply to each stage's graph.
    """

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, distill_stages: str = 'all',
                 distill_stage_weights: Optional[Sequence[float]] = None,
                 virtual_view: Optional[dict] = None, roi_vertices: str = 'all',
                 background_ratio: float = 1.0, max_vertices: Optional[int] = None,
                 virtual_det_loss: bool = False, distill_warmup_iters: int = 0,
                 gather_vertices: Union[bool, str] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        check_choice('distill_stages', distill_stages, DISTILL_STAGES)
        if gather_vertices:
            # A process whose batch leaves no RoI stops after a stage (as mmdet's
            # cascade does) while the others would wait for it in the next
            # stage's gathered graph.
            raise ValueError('gather_vertices is not supported by CascadeDistiller: keep '
                             'one graph per process and stage (gather_vertices=False)')
        super().__init__(student, teacher, teacher_ckpt, distill_loss, virtual_view,
                         roi_vertices=roi_vertices, background_ratio=background_ratio,
                         max_vertices=max_vertices, virtual_det_loss=virtual_det_loss,
                         distill_warmup_iters=distill_warmup_iters,
                         gather_vertices=gather_vertices, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if self.views_from_pipeline:
            raise TypeError(
                "CascadeDistiller takes the in-model virtual view only (e.g. virtual_view="
                "dict(type='PhotometricRandAugment', num_ops=2)): projecting every stage's "
                "RoIs into the pipeline's view is not implemented")
        num_stages = self.student.roi_head.num_stages
        if distill_stage_weights is None:
            distill_stage_weights = self.student.roi_head.stage_loss_weights
        if len(distill_stage_weights) != num_stages:
            raise ValueError(
                f'distill_stage_weights={list(distill_stage_weights)} has '
                f'{len(distill_stage_weights)} weights for {num_stages} stages: give one '
                'per stage, or None for the RoI head\'s stage_loss_weights')
        self.distill_stage_weights = [float(w) for w in distill_stage_weights]
        #: The stages whose RoI logits are distilled.
        self.distilled_stages = (list(range(num_stages)) if distill_stages == 'all'
                                 else [num_stages - 1])

    def check_roi_head(self, role: str, roi_head: nn.Module) -> None:
        if not isinstance(roi_head.bbox_head, nn.ModuleList):
            raise TypeError(
                f'the {role} has a single-stage RoI head ({type(roi_head).__name__}); '
                "CascadeDistiller distils a cascade's stages: use type='TwoStageDistiller' "
                'for Faster / Mask R-CNN, or a Cascade R-CNN config for the ' + role)
        if roi_head.with_mask:
            raise TypeError(
                f'the {role} is a Cascade Mask R-CNN (its RoI head has mask heads), which '
                'CascadeDistiller does not support: use a Cascade R-CNN config (no '
                'mask_head), or Mask R-CNN with TwoStageDistiller')

    def check_compatible(self, student, teacher) -> None:
        super().check_compatible(student, teacher)
        s_stages, t_stages = student.roi_head.num_stages, teacher.roi_head.num_stages
        if s_stages != t_stages:
            raise ValueError(
                f'the teacher has {t_stages} cascade stages and the student {s_stages}: '
                'stage k of the student is matched to stage k of the teacher on the same '
                'RoIs, so give both RoI heads the same num_stages')

    def loss(self, inputs: Union[Tensor, Dict[str, Tensor]],
             data_samples: Union[List, Dict[str, List]]) -> Dict[str, Tensor]:
        inputs, data_samples, virtual, _ = self._real_and_virtual(inputs, data_samples)
        num_images = inputs.shape[0]
        image_metas = [sample.metainfo for sample in data_samples]
        image_sizes = [meta['img_shape'][:2] for meta in image_metas]
        real_feats, all_feats = self.student_features(inputs, virtual)
        with_virtual = virtual is not None
        student_feats = all_feats if with_virtual else real_feats
        teacher_feats = self.teacher_features(inputs, virtual, image_sizes)

        losses, proposals = self._rpn(real_feats, data_samples)
        roi_head = self.student.roi_head
        for stage in range(roi_head.num_stages):
            sampling_results = self._sample_rois(real_feats, proposals, data_samples,
                                                 roi_head.bbox_assigner[stage],
                                                 roi_head.bbox_sampler[stage])
            rois = bbox2roi([res.priors for res in sampling_results])
            num_rois = len(rois)
            student_out = self.score_rois(self.student, student_feats, rois, num_images,
                                          with_virtual, stage=stage)
            real = self._roi_losses(student_out, slice(0, num_rois), rois, sampling_results,
                                    stage=stage)
            weight = roi_head.stage_loss_weights[stage]
            losses.update(_stage_entries(real['loss_bbox'], stage, weight))
            if self.virtual_det_loss:  # same RoIs and targets: the boxes did not move
                virtual_losses = self._roi_losses(student_out, slice(num_rois, None), rois,
                                                  sampling_results, stage=stage)['loss_bbox']
                losses.update(_stage_entries(
                    {f'{k}_virtual': v for k, v in virtual_losses.items() if 'loss' in k},
                    stage, weight))

            if stage in self.distilled_stages:
                with torch.no_grad():
                    teacher_scores = self.score_rois(self.teacher, teacher_feats, rois,
                                                     num_images, with_virtual,
                                                     stage=stage)['cls_score']
                distilled = self.distill_rois(sampling_results, student_out['cls_score'],
                                              teacher_scores, with_virtual)
                losses.update(_stage_entries(distilled, stage,
                                             self.distill_stage_weights[stage]))

            if stage < roi_head.num_stages - 1:  # the next stage's RoIs, as mmdet's
                with torch.no_grad():
                    proposals = roi_head.bbox_head[stage].refine_bboxes(
                        sampling_results,
                        dict(cls_score=student_out['cls_score'][:num_rois],
                             bbox_pred=student_out['bbox_pred'][:num_rois], rois=rois,
                             bbox_targets=real['bbox_targets']),
                        image_metas)
                if proposals is None:  # no RoI in the batch (mmdet stops there too)
                    break
        return losses
