"""Distillation of a two-stage detector (Faster R-CNN family) on RoI logits."""
import copy
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.utils import unpack_gt_instances
from mmdet.structures.bbox import bbox2roi
from torch import Tensor, nn

from vrm_det.functional.validation import check_choice
from vrm_det.registry import register_model

from .base_distiller import BaseDistiller

ROI_VERTICES = ('all', 'foreground', 'balanced')


def _cpu_autocast(feats) -> bool:
    """Whether ``feats`` are computed under CPU autocast (bfloat16), where
    mmcv's CPU kernels (NMS, RoIAlign) refuse anything but float32."""
    return feats[0].device.type == 'cpu' and torch.is_autocast_enabled('cpu')


@register_model
class TwoStageDistiller(BaseDistiller):
    """Distil a two-stage detector's RoI classification logits.

    One training step:

    1. The student's backbone and neck run on the real images and, when the
       loss or ``virtual_det_loss`` needs it, on the virtual view made by
       ``virtual_view``. With batch-norm frozen (mmdet's ``norm_eval=True``,
       the default of its Faster R-CNN configs) both views go through in one
       batched forward; with batch-norm in training mode they go separately,
       so the real images' statistics are not mixed with the virtual ones.
    2. The student's RPN proposes on the real view and its sampler picks the
       RoIs; the student's detection losses are taken as mmdet does.
    3. The student's RoI head scores the same RoIs on both views in one
       RoIAlign and head pass (the virtual RoIs index the second half of the
       batched features).
    4. The teacher runs its backbone, neck and RoI bbox head only, without
       gradient, in one batched forward over both views, on **the same RoIs**:
       its RPN and sampler never run, so the logit rows line up.
    5. The selected RoIs become the graph's vertices and the four logit
       matrices go to ``distill_loss``.

    Args:
        student (dict): Config of the student detector.
        teacher (dict | str): Config (or config file) of the teacher detector.
        teacher_ckpt (str): Checkpoint of the teacher.
        distill_loss (dict): Config of the distillation loss.
        virtual_view (dict, optional): Config of the augmentation that makes
            the virtual images from RGB images in [0, 255], e.g.
            ``dict(type='PhotometricRandAugment', num_ops=2)``. Required when
            the loss uses the virtual view or ``virtual_det_loss`` is True.
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
            and regression losses on the virtual view.
        distill_warmup_iters (int): Linear warm-up of the distillation weight.
        gather_vertices (bool): One graph over every process's vertices in a
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
                 gather_vertices: bool = False, data_preprocessor: Optional[dict] = None,
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
            self.distill_loss.background_label = self.student.roi_head.bbox_head.num_classes
        self.virtual_det_loss = virtual_det_loss

    def check_compatible(self, student, teacher) -> None:
        for role, model in (('student', student), ('teacher', teacher)):
            roi_head = getattr(model, 'roi_head', None)
            if roi_head is None or not getattr(roi_head, 'with_bbox', False):
                raise TypeError(f'the {role} ({type(model).__name__}) is not a two-stage '
                                'detector with a RoI bbox head')
            if isinstance(roi_head.bbox_head, nn.ModuleList):
                raise TypeError(
                    f'the {role} has a multi-stage RoI head ({type(roi_head).__name__} with '
                    f'{len(roi_head.bbox_head)} bbox heads, as in Cascade R-CNN); '
                    'TwoStageDistiller distils one RoI bbox head: use a Faster R-CNN style '
                    'config (StandardRoIHead)')
            if getattr(roi_head, 'with_mask', False):
                raise TypeError(f'the {role} has a mask head; TwoStageDistiller distils '
                                'the bbox branch only: use a Faster R-CNN style config')
        if not student.with_rpn:
            raise TypeError('the student needs an RPN: its proposals are the vertices')
        s_classes = student.roi_head.bbox_head.num_classes
        t_classes = teacher.roi_head.bbox_head.num_classes
        if s_classes != t_classes:
            raise ValueError(f'the teacher predicts {t_classes} classes and the student '
                             f'{s_classes}: RoI logits are matched class by class, so '
                             'set the same num_classes in both bbox heads')

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

    def _sample_rois(self, feats, proposals, data_samples) -> list:
        roi_head = self.student.roi_head
        gt_instances, gt_ignore, _ = unpack_gt_instances(data_samples)
        results = []
        for i, proposal in enumerate(proposals):
            proposal.priors = proposal.pop('bboxes')
            assigned = roi_head.bbox_assigner.assign(proposal, gt_instances[i], gt_ignore[i])
            results.append(roi_head.bbox_sampler.sample(
                assigned, proposal, gt_instances[i], feats=[level[i][None] for level in feats]))
        return results

    def _roi_labels(self, sampling_results) -> Tensor:
        """Class of every sampled RoI; background is ``num_classes``."""
        background = self.student.roi_head.bbox_head.num_classes
        return torch.cat([torch.cat([res.pos_gt_labels,
                                     res.pos_gt_labels.new_full((len(res.neg_priors),),
                                                                background)])
                          for res in sampling_results])

    def select_vertices(self, labels: Tensor) -> Tensor:
        """Indices of the sampled RoIs that become graph vertices."""
        background = self.student.roi_head.bbox_head.num_classes
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
                   with_virtual: bool) -> Dict[str, Tensor]:
        """RoI head outputs on the real view, and on the virtual view when
        ``feats`` holds both (the virtual RoIs index the second half)."""
        if _cpu_autocast(feats):  # RoIAlign pools in float32; the head still autocasts
            feats = tuple(level.float() for level in feats)
        if with_virtual:
            virtual_rois = rois.clone()
            virtual_rois[:, 0] += num_images
            rois = torch.cat([rois, virtual_rois])
        return model.roi_head._bbox_forward(feats, rois)

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        if len(data_samples) == 0 or inputs.shape[0] == 0:
            raise ValueError('empty batch: the dataloader returned no images')
        num_images = inputs.shape[0]
        image_sizes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
        virtual = self.make_virtual_inputs(inputs, image_sizes)
        real_feats, all_feats = self.student_features(inputs, virtual)

        losses, proposals = self._rpn(real_feats, data_samples)
        sampling_results = self._sample_rois(real_feats, proposals, data_samples)
        rois = bbox2roi([res.priors for res in sampling_results])
        num_rois = len(rois)

        with_virtual = virtual is not None
        student_out = self.score_rois(self.student, all_feats if with_virtual else real_feats,
                                      rois, num_images, with_virtual)
        def roi_losses(rows: slice) -> Dict[str, Tensor]:
            return self.student.roi_head.bbox_head.loss_and_target(
                cls_score=student_out['cls_score'][rows], bbox_pred=student_out['bbox_pred'][rows],
                rois=rois, sampling_results=sampling_results,
                rcnn_train_cfg=self.student.roi_head.train_cfg)['loss_bbox']

        losses.update(roi_losses(slice(0, num_rois)))
        if self.virtual_det_loss:  # same RoIs and targets: the boxes did not move
            losses.update({f'{k}_virtual': v for k, v in roi_losses(slice(num_rois, None)).items()
                           if 'loss' in k})

        with torch.no_grad():
            teacher_feats = self.teacher_features(inputs, virtual, image_sizes)
            teacher_scores = self.score_rois(self.teacher, teacher_feats,
                                             rois, num_images, with_virtual)['cls_score']

        labels = self._roi_labels(sampling_results)
        index = self.select_vertices(labels)
        student_scores = student_out['cls_score']
        distill_inputs = dict(
            student_logits=student_scores[:num_rois][index],
            teacher_logits=teacher_scores[:num_rois][index],
            labels=labels[index])
        if with_virtual:
            distill_inputs.update(student_virtual_logits=student_scores[num_rois:][index],
                                  teacher_virtual_logits=teacher_scores[num_rois:][index])
        losses.update(self.distill(**distill_inputs))
        return losses
