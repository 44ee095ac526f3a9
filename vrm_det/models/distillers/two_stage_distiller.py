"""Distillation of a two-stage detector (Faster R-CNN family) on RoI logits.

A Mask R-CNN student's mask head trains on its own losses beside the
distilled bbox head; :mod:`.cascade_distiller` distils a cascade's stages."""
import copy
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from vrm_det.functional.validation import check_choice
from vrm_det.models.virtual_views import (
    DetectionPipelineView,
    PipelineView,
    ViewwiseDataPreprocessor,
    project_rois,
    project_sampling_results,
    real_to_virtual_homographies,
)
from vrm_det.registry import register_model

from .base_distiller import BaseDistiller

ROI_VERTICES = ('all', 'foreground', 'balanced')


def _cpu_autocast(feats) -> bool:
    """Whether ``feats`` are computed under CPU autocast (bfloat16), where
    mmcv's CPU kernels (NMS, RoIAlign) refuse anything but float32."""
    return feats[0].device.type == 'cpu' and torch.is_autocast_enabled('cpu')


def roi_num_classes(detector: nn.Module) -> int:
    """The classes of a detector's RoI bbox head, background excluded (the
    background logit is column ``num_classes``); a cascade's stages share them."""
    bbox_head = detector.roi_head.bbox_head
    return (bbox_head[-1] if isinstance(bbox_head, nn.ModuleList) else bbox_head).num_classes


@register_model
class TwoStageDistiller(BaseDistiller):
    """Distil a two-stage detector's RoI classification logits.

    One training step:

    1. The student's backbone and neck run on the real images and, when the
       loss or ``virtual_det_loss`` needs it, on the virtual view: made in
       the model by ``virtual_view``, or by the data pipeline
       (``DetectionPipelineView``). With batch-norm frozen (mmdet's ``norm_eval=True``,
       the default of its Faster R-CNN configs) both views go through in one
       batched forward; with batch-norm in training mode they go separately,
       so the real images' statistics are not mixed with the virtual ones.
    2. The student's RPN proposes on the real view and its sampler picks the
       RoIs; the student's detection losses are taken as mmdet does.
    3. The student's RoI head scores the RoIs on both views in one RoIAlign
       and head pass (the virtual RoIs index the second half of the batched
       features): the same boxes for the in-model view, which moves no pixel;
       for a pipeline view with geometric operations, the boxes projected
       into each virtual image (:func:`~vrm_det.models.virtual_views.project_rois`),
       rows aligned with the real ones.
    4. The teacher runs its backbone, neck and RoI bbox head only, without
       gradient, in one batched forward over both views, on **the same RoIs**
       (and the same projected ones): its RPN and sampler never run, so the
       logit rows line up.
    5. The selected RoIs become the graph's vertices (without those a
       projection pushed mostly out of the virtual image) and the four logit
       matrices go to ``distill_loss``.

    Args:
        student (dict): Config of the student detector.
        teacher (dict | str): Config (or config file) of the teacher detector.
        teacher_ckpt (str): Checkpoint of the teacher.
        distill_loss (dict): Config of the distillation loss.
        virtual_view (dict, optional): Config of the augmentation that makes
            the virtual images from RGB images in [0, 255], e.g.
            ``dict(type='PhotometricRandAugment', num_ops=2)``, or
            ``dict(type='DetectionPipelineView')`` for the pipeline's view
            (``MultiBranch`` with branches ``real`` and ``virtual``). Required
            when the loss uses the virtual view or ``virtual_det_loss`` is True.
        roi_vertices (str): ``'all'`` sampled RoIs, ``'foreground'`` ones, or
            ``'balanced'``: every foreground RoI plus a random sample of the
            background ones, at most ``background_ratio`` times as many
            (and enough for two vertices), so that fewer edges join two
            background RoIs.
        background_ratio (float): Background vertices per foreground vertex
            under ``roi_vertices='balanced'``.
        max_vertices (int, optional): Keep at most this many vertices per
            batch (a random subset).
        virtual_det_loss (bool): Also take the student's RoI classification
            and regression losses (and a Mask R-CNN's mask loss) on the
            virtual view.
        distill_warmup_iters (int): Linear warm-up of the distillation weight.
        gather_vertices (bool | str): One graph over every process's vertices in a
            multi-process run (see :class:`BaseDistiller`).
        data_preprocessor (dict, optional): The student's data preprocessor
            when its config names none (see :class:`BaseDistiller`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, virtual_view: Optional[dict] = None,
                 roi_vertices: str = 'all', background_ratio: float = 1.0,
                 max_vertices: Optional[int] = None, virtual_det_loss: bool = False,
                 distill_warmup_iters: int = 0,
                 gather_vertices: Union[bool, str] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        check_choice('roi_vertices', roi_vertices, ROI_VERTICES)
        if background_ratio < 0:
            raise ValueError(f'background_ratio={background_ratio} must be >= 0')
        if background_ratio != 1.0 and roi_vertices != 'balanced':
            raise ValueError(f"background_ratio={background_ratio} applies to "
                             f"roi_vertices='balanced' only (got {roi_vertices!r})")
        if max_vertices is not None and max_vertices < 2:
            raise ValueError(f'max_vertices={max_vertices} must be at least 2 or None')
        super().__init__(student, teacher, teacher_ckpt, distill_loss, virtual_view,
                         virtual_view_needed=virtual_det_loss,
                         distill_warmup_iters=distill_warmup_iters,
                         gather_vertices=gather_vertices, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.roi_vertices, self.max_vertices = roi_vertices, max_vertices
        self.background_ratio = background_ratio
        if hasattr(self.distill_loss, 'background_label'):
            self.distill_loss.background_label = roi_num_classes(self.student)
        self.virtual_det_loss = virtual_det_loss
        self.views_from_pipeline = isinstance(self.virtual_view, DetectionPipelineView)
        if isinstance(self.virtual_view, PipelineView) and not self.views_from_pipeline:
            raise TypeError("virtual_view=dict(type='PipelineView') is the classification "
                            "views' marker: a detection distiller projects its RoIs into "
                            "the pipeline's view, use dict(type='DetectionPipelineView')")
        if self.views_from_pipeline:
            self.data_preprocessor = ViewwiseDataPreprocessor(self.data_preprocessor)
        if self.views_from_pipeline and virtual_det_loss and self.student.roi_head.with_mask:
            raise ValueError(
                "virtual_det_loss=True with a mask head needs the in-model virtual view: the "
                "pipeline's view moves pixels, and the student's masks would be trained on "
                'targets that did not move with them. Set virtual_det_loss=False, or '
                "virtual_view=dict(type='PhotometricRandAugment', num_ops=2)")

    def check_compatible(self, student, teacher) -> None:
        for role, model in (('student', student), ('teacher', teacher)):
            roi_head = getattr(model, 'roi_head', None)
            if roi_head is None or not getattr(roi_head, 'with_bbox', False):
                raise TypeError(f'the {role} ({type(model).__name__}) is not a two-stage '
                                'detector with a RoI bbox head')
            self.check_roi_head(role, roi_head)
        if not student.with_rpn:
            raise TypeError('the student needs an RPN: its proposals are the vertices')
        s_classes, t_classes = roi_num_classes(student), roi_num_classes(teacher)
        if s_classes != t_classes:
            raise ValueError(f'the teacher predicts {t_classes} classes and the student '
                             f'{s_classes}: RoI logits are matched class by class, so '
                             'set the same num_classes in both bbox heads')

    def check_roi_head(self, role: str, roi_head: nn.Module) -> None:
        """Raise if ``roi_head`` (the ``role``'s, 'student' or 'teacher') is
        not one this distiller scores: one RoI bbox head (Faster R-CNN, or
        Mask R-CNN, whose mask head trains on its own losses and is not
        distilled; a teacher's mask head never runs)."""
        if isinstance(roi_head.bbox_head, nn.ModuleList):
            raise TypeError(
                f'the {role} has a multi-stage RoI head ({type(roi_head).__name__} with '
                f'{len(roi_head.bbox_head)} bbox heads, as in Cascade R-CNN); '
                "TwoStageDistiller distils one RoI bbox head: use type='CascadeDistiller' "
                'for a cascade, or a Faster / Mask R-CNN config (StandardRoIHead)')

    # -- the training step -------------------------------------------------

    def _rpn(self, feats, data_samples) -> Tuple[dict, list]:
        """Student RPN losses and proposals, as mmdet's TwoStageDetector takes them."""
        student = self.student
        proposal_cfg = student.train_cfg.get('rpn_proposal', student.test_cfg.rpn)
        rpn_samples = copy.deepcopy(data_samples)
        for sample in rpn_samples:  # the RPN is class-agnostic
            sample.gt_instances.labels = torch.zeros_like(sample.gt_instances.labels)
        if _cpu_autocast(feats):  # the proposals go through mmcv's NMS
            with torch.autocast('cpu', enabled=False):
                return self._rpn(tuple(level.float() for level in feats), data_samples)
        losses, proposals = student.rpn_head.loss_and_predict(
            feats, rpn_samples, proposal_cfg=proposal_cfg)
        losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v
                  for k, v in losses.items()}
        return losses, proposals

    def _sample_rois(self, feats, proposals, data_samples, assigner=None, sampler=None) -> list:
        """Assign and sample the student's RoIs, as mmdet's RoI heads do: with
        ``assigner`` and ``sampler`` (a cascade stage's), or the RoI head's."""
        roi_head = self.student.roi_head
        assigner = roi_head.bbox_assigner if assigner is None else assigner
        sampler = roi_head.bbox_sampler if sampler is None else sampler
        gt_instances, gt_ignore, _ = unpack_gt_instances(data_samples)
        results = []
        for i, proposal in enumerate(proposals):
            proposal.priors = proposal.pop('bboxes')
            assigned = assigner.assign(proposal, gt_instances[i], gt_ignore[i])
            results.append(sampler.sample(
                assigned, proposal, gt_instances[i], feats=[level[i][None] for level in feats]))
        return results

    def _roi_labels(self, sampling_results) -> Tensor:
        """Class of every sampled RoI; background is ``num_classes``."""
        background = roi_num_classes(self.student)
        return torch.cat([torch.cat([res.pos_gt_labels,
                                     res.pos_gt_labels.new_full((len(res.neg_priors),),
                                                                background)])
                          for res in sampling_results])

    def select_vertices(self, labels: Tensor) -> Tensor:
        """Indices of the sampled RoIs that become graph vertices."""
        background = roi_num_classes(self.student)
        if self.roi_vertices == 'foreground':
            index = (labels < background).nonzero(as_tuple=True)[0]
        elif self.roi_vertices == 'balanced':
            foreground = (labels < background).nonzero(as_tuple=True)[0]
            candidates = (labels == background).nonzero(as_tuple=True)[0]
            cap = max(math.ceil(self.background_ratio * len(foreground)), 2 - len(foreground))
            chosen = torch.randperm(len(candidates), device=labels.device)[:cap]
            index = torch.cat([foreground, candidates[chosen]]).sort().values
        else:
            index = torch.arange(len(labels), device=labels.device)
        if self.max_vertices is not None and len(index) > self.max_vertices:
            keep = torch.randperm(len(index), device=index.device)[:self.max_vertices]
            index = index[keep.sort().values]
        return index

    def score_rois(self, model, feats, rois: Tensor, num_images: int,
                   with_virtual: bool, virtual_rois: Optional[Tensor] = None,
                   stage: Optional[int] = None) -> Dict[str, Tensor]:
        """RoI head outputs on the real view, and on the virtual view when
        ``feats`` holds both (the virtual RoIs index the second half): at
        ``virtual_rois`` (the RoIs projected into the virtual images, rows
        aligned with ``rois``), or at ``rois`` when the view moved no pixel.
        ``stage``: the cascade stage whose bbox head scores them (None: the
        one bbox head of a StandardRoIHead)."""
        if _cpu_autocast(feats):  # RoIAlign pools in float32; the head still autocasts
            feats = tuple(level.float() for level in feats)
        if with_virtual:
            virtual_rois = (rois if virtual_rois is None else virtual_rois).clone()
            virtual_rois[:, 0] += num_images
            rois = torch.cat([rois, virtual_rois])
        if stage is None:
            return model.roi_head._bbox_forward(feats, rois)
        return model.roi_head._bbox_forward(stage, feats, rois)

    def _real_and_virtual(self, inputs: Union[Tensor, Dict[str, Tensor]],
                          data_samples: Union[List, Dict[str, List]]):
        """The real batch, its samples, the virtual batch (None when nothing
        uses it) and, for a pipeline view, the real-to-virtual homographies
        (shape (N, 3, 3); None for the in-model view, which moves no pixel)."""
        if self.views_from_pipeline != isinstance(inputs, dict):
            raise ValueError(
                "the batch's views do not match model.virtual_view: "
                + ("DetectionPipelineView needs train_pipeline to end with MultiBranch "
                   "(branches 'real' and 'virtual'; configs/_base_/geometric_virtual_view.py)"
                   if self.views_from_pipeline else
                   "the batch has the pipeline's branches but the view is made in the "
                   "model: set model.virtual_view=dict(type='DetectionPipelineView')"))
        homographies = None
        if self.views_from_pipeline:
            missing = {'real', 'virtual'} - set(inputs)
            if missing:
                raise ValueError(f'the MultiBranch batch lacks the branch(es) {sorted(missing)}: '
                                 "name them branch_field=['real', 'virtual']")
            virtual_samples = data_samples['virtual']
            inputs, virtual, data_samples = inputs['real'], inputs['virtual'], data_samples['real']
            homographies = real_to_virtual_homographies(data_samples, virtual_samples)
            if not self.uses_virtual_view:
                virtual = homographies = None
        if len(data_samples) == 0 or inputs.shape[0] == 0:
            raise ValueError('empty batch: the dataloader returned no images')
        if not self.views_from_pipeline:
            image_sizes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
            virtual = self.make_virtual_inputs(inputs, image_sizes)
        return inputs, data_samples, virtual, homographies

    def _roi_losses(self, student_out: Dict[str, Tensor], rows: Union[slice, Tensor],
                    rois: Tensor, sampling_results: list, stage: Optional[int] = None) -> dict:
        """mmdet's ``loss_and_target`` of the student's bbox head (of cascade
        stage ``stage``) on the head outputs ``rows``: the RoIs ``rois``, shape
        (R, 5), targets from ``sampling_results``. Returns the unweighted
        losses (``loss_bbox``) and the targets (``bbox_targets``); with no RoI
        at all the losses are zeros that keep the graph (mmdet leaves out its
        classification loss then)."""
        roi_head = self.student.roi_head
        head = roi_head.bbox_head if stage is None else roi_head.bbox_head[stage]
        train_cfg = roi_head.train_cfg if stage is None else roi_head.train_cfg[stage]
        cls_score, bbox_pred = student_out['cls_score'][rows], student_out['bbox_pred'][rows]
        out = head.loss_and_target(cls_score=cls_score, bbox_pred=bbox_pred, rois=rois,
                                   sampling_results=sampling_results, rcnn_train_cfg=train_cfg)
        if len(rois) == 0:
            zero = cls_score.sum() * 0 + bbox_pred.sum() * 0
            out['loss_bbox'] = dict(loss_cls=zero, loss_bbox=zero, acc=zero.detach())
        return out

    def _mask_losses(self, view_feats: Tuple[Tensor, ...], sampling_results: list,
                     bbox_feats: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """The student's own mask losses on one view, by mmdet's
        ``StandardRoIHead.mask_loss`` (its positive RoIs, its targets).

        Args:
            view_feats (tuple[Tensor]): The view's multi-level features, each
                of shape (N, C, H, W).
            sampling_results (list[SamplingResult]): The N images' sampled RoIs.
            bbox_feats (Tensor): The view's pooled RoI features, shape
                (R, C, h, w), which a mask head sharing the bbox RoI extractor
                takes its positive rows from.
            data_samples (list[DetDataSample]): With ``gt_instances.masks``.
        """
        if _cpu_autocast(view_feats):  # RoIAlign pools in float32
            view_feats = tuple(level.float() for level in view_feats)
        gt_instances = unpack_gt_instances(data_samples)[0]
        return self.student.roi_head.mask_loss(view_feats, sampling_results, bbox_feats,
                                               gt_instances)['loss_mask']

    def loss(self, inputs: Union[Tensor, Dict[str, Tensor]],
             data_samples: Union[List, Dict[str, List]]) -> Dict[str, Tensor]:
        inputs, data_samples, virtual, homographies = self._real_and_virtual(inputs, data_samples)
        num_images = inputs.shape[0]
        image_sizes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
        real_feats, all_feats = self.student_features(inputs, virtual)

        losses, proposals = self._rpn(real_feats, data_samples)
        sampling_results = self._sample_rois(real_feats, proposals, data_samples)
        rois = bbox2roi([res.priors for res in sampling_results])
        num_rois = len(rois)
        # A geometric view moves the objects: the RoIs follow into the virtual image.
        projected = None if homographies is None else project_rois(
            rois, homographies, image_sizes, self.virtual_view.min_inside)
        virtual_rois = None if projected is None else projected.rois

        with_virtual = virtual is not None
        student_out = self.score_rois(self.student, all_feats if with_virtual else real_feats,
                                      rois, num_images, with_virtual, virtual_rois)
        losses.update(self._roi_losses(student_out, slice(0, num_rois), rois,
                                       sampling_results)['loss_bbox'])
        if self.virtual_det_loss:
            if projected is None:  # same RoIs and targets: the boxes did not move
                virtual_losses = self._roi_losses(student_out, slice(num_rois, None), rois,
                                                  sampling_results)['loss_bbox']
            else:  # the RoIs and their ground truth projected alike
                virtual_results, rows = project_sampling_results(
                    sampling_results, projected, homographies, image_sizes)
                virtual_losses = self._roi_losses(student_out, num_rois + rows,
                                                  projected.rois[rows],
                                                  virtual_results)['loss_bbox']
            losses.update({f'{k}_virtual': v for k, v in virtual_losses.items() if 'loss' in k})
        if self.student.roi_head.with_mask:  # trained on its own losses, not distilled
            losses.update(self._mask_losses(real_feats, sampling_results,
                                            student_out['bbox_feats'][:num_rois], data_samples))
            if self.virtual_det_loss:
                # The in-model virtual view is photometric (a pipeline view is refused
                # with a mask head at build time): it moves no pixel, so on the same
                # RoIs the masks' targets are the real view's.
                virtual_feats = tuple(level[num_images:] for level in all_feats)
                virtual_losses = self._mask_losses(virtual_feats, sampling_results,
                                                   student_out['bbox_feats'][num_rois:],
                                                   data_samples)
                losses.update({f'{k}_virtual': v for k, v in virtual_losses.items()})

        with torch.no_grad():
            teacher_feats = self.teacher_features(inputs, virtual, image_sizes)
            teacher_scores = self.score_rois(self.teacher, teacher_feats, rois, num_images,
                                             with_virtual, virtual_rois)['cls_score']

        if projected is not None:
            losses['projected_dropped_share'] = 1 - projected.kept.float().mean()
        losses.update(self.distill_rois(sampling_results, student_out['cls_score'],
                                        teacher_scores, with_virtual,
                                        None if projected is None else projected.kept))
        return losses

    def distill_rois(self, sampling_results: list, student_scores: Tensor,
                     teacher_scores: Tensor, with_virtual: bool,
                     candidates: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The distillation losses on one set of sampled RoIs: the vertices
        are chosen (:meth:`select_vertices`) and their logit rows go to
        :meth:`distill`.

        Args:
            sampling_results (list[SamplingResult]): The RoIs, R in all.
            student_scores (Tensor): The student's RoI logits, shape (R, C),
                or (2R, C) with the virtual view (real rows first).
            teacher_scores (Tensor): The teacher's, on the same RoIs, same shape.
            with_virtual (bool): Whether the scores hold the virtual rows.
            candidates (Tensor, optional): Boolean, shape (R,): the RoIs that
                may become vertices (those a geometric view kept in sight);
                None: all.
        """
        num_rois = len(student_scores) // 2 if with_virtual else len(student_scores)
        labels = self._roi_labels(sampling_results)
        if candidates is None:
            index = self.select_vertices(labels)
        else:  # RoIs projected mostly out of the virtual image leave both graphs
            allowed = candidates.nonzero(as_tuple=True)[0]
            index = allowed[self.select_vertices(labels[allowed])]
        distill_inputs = dict(
            student_logits=student_scores[:num_rois][index],
            teacher_logits=teacher_scores[:num_rois][index],
            labels=labels[index])
        if with_virtual:
            distill_inputs.update(student_virtual_logits=student_scores[num_rois:][index],
                                  teacher_virtual_logits=teacher_scores[num_rois:][index])
        return self.distill(**distill_inputs)
