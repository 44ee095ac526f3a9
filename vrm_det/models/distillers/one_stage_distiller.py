"""Distillation of a dense one-stage detector (RetinaNet) on anchor logits."""
import math
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmdet.models.dense_heads import AnchorHead
from mmdet.models.utils import unpack_gt_instances
from torch import Tensor

from vrm_det.functional.validation import check_choice
from vrm_det.models.virtual_views import PipelineView
from vrm_det.registry import register_model

from .base_distiller import BaseDistiller

#: What a vertex's logit row is; see :class:`OneStageDistiller`.
LOGIT_ROWS = ('background', 'classes')


def _anchor_layout(head: AnchorHead) -> Dict[str, object]:
    """What fixes the anchor at every position of a head's output maps."""
    generator = head.prior_generator
    return dict(type=type(generator).__name__,
                strides=[tuple(s) for s in generator.strides],
                base_sizes=list(getattr(generator, 'base_sizes', [])),
                scales=getattr(generator, 'scales', torch.empty(0)).tolist(),
                ratios=getattr(generator, 'ratios', torch.empty(0)).tolist(),
                center_offset=getattr(generator, 'center_offset', None),
                anchors_per_location=head.num_base_priors)


@register_model
class OneStageDistiller(BaseDistiller):
    """Distil a dense one-stage detector's anchor classification logits
    (mmdet's RetinaNet: an :class:`~mmdet.models.dense_heads.AnchorHead` with
    a sigmoid classifier).

    One training step:

    1. The student's backbone and neck run on the real images and, when the
       loss or ``virtual_det_loss`` needs it, on the virtual view (see
       :meth:`BaseDistiller.student_features`); its head runs once on both.
    2. The student's detection losses are mmdet's own
       (``bbox_head.loss_by_feat``, what ``bbox_head.loss`` computes) on the
       real view, and on the virtual view too with ``virtual_det_loss``: the
       photometric view does not move boxes, so the targets are the same.
    3. The student head's own assigner labels every anchor, as its loss
       does (``bbox_head.get_targets``). The vertices are every positive
       anchor of the batch and a random sample of its negative anchors
       (assigned background, not ignored, inside the image):
       ``ceil(negative_ratio * positives)``, at least enough for two
       vertices, and no more than ``max_vertices`` minus the positives.
       (The assignment runs twice per step: here and inside mmdet's loss,
       which does not return it.)
    4. The teacher runs backbone, neck and head only, without gradient, on
       both views in one batched forward; its assigner never runs. Its
       anchors are the student's (checked at build time: classes, anchor
       generator, strides, anchors per location; and at every step: the
       feature-map sizes), so the same (image, level, y, x, anchor) indices
       pick the teacher's rows.
    5. The four logit matrices go to ``distill_loss``, with the assigned
       class of each vertex (``num_classes`` for background) as labels.

    The logit row (``logit_row``): a sigmoid classifier scores C classes
    independently and has no background column, while the joint-entropy
    pruning (:func:`vrm_det.functional.pruning.prediction_entropy`) and the
    KD-family losses read a row as the logits of one softmax distribution.

    - ``'background'`` (default): the C class logits with a zero logit
      appended as background, a row of C + 1. Its softmax gives every class
      the odds against background that its sigmoid gives,
      ``p_c / p_bg = exp(l_c) = sigma(l_c) / (1 - sigma(l_c))`` (with one class
      it *is* the sigmoid); it differs from independent sigmoids only in how
      mass is shared when several classes fire at one anchor. A confident
      background anchor (every logit very negative) reads as a confident
      distribution (low entropy), so pruning drops the uncertain anchors.
      The appended column is the same constant for every row, so the
      inter-sample edges are the C-logit ones unchanged; the inter-class
      graph gains a background vertex whose edges carry each class's
      (normalised) score column. Background is column ``num_classes``, as in
      the RoI head's ``cls_score``, so label-reading losses (DKD) and the
      pruning diagnostics work as on Faster R-CNN.
    - ``'classes'``: the C logits as they are. Softmax over them ignores how
      likely any object is: a confident background anchor (all logits very
      negative, about equal) reads as near-uniform, maximal entropy, so the
      pruning drops confident background anchors first. Kept as the
      ablation; refused with losses that need labels (there is no
      background column for them).

    Args:
        student (dict): Config of the student detector.
        teacher (dict | str): Config (or config file) of the teacher detector.
        teacher_ckpt (str): Checkpoint of the teacher.
        distill_loss (dict): Config of the distillation loss.
        virtual_view (dict, optional): Config of the photometric augmentation
            that makes the virtual images (see :class:`BaseDistiller`).
            Required when the loss uses the virtual view or
            ``virtual_det_loss`` is True.
        logit_row (str): ``'background'`` or ``'classes'``, see above.
        negative_ratio (float): Negative vertices sampled per positive one.
        max_vertices (int, optional): At most this many vertices per batch.
            Negatives are cut first; only when the positives alone exceed it
            are they subsampled (at random) too.
        virtual_det_loss (bool): Also take the student's detection losses on
            the virtual view.
        distill_warmup_iters (int): Linear warm-up of the distillation weight.
        gather_vertices (bool | str): One graph over every process's vertices in a
            multi-process run (see :class:`BaseDistiller`).
        data_preprocessor (dict, optional): The student's data preprocessor
            when its config names none (see :class:`BaseDistiller`).
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, virtual_view: Optional[dict] = None,
                 logit_row: str = 'background', negative_ratio: float = 3.0,
                 max_vertices: Optional[int] = 1024, virtual_det_loss: bool = False,
                 distill_warmup_iters: int = 0, gather_vertices: Union[bool, str] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        check_choice('logit_row', logit_row, LOGIT_ROWS)
        if negative_ratio < 0:
            raise ValueError(f'negative_ratio={negative_ratio} must be >= 0')
        if max_vertices is not None and max_vertices < 2:
            raise ValueError(f'max_vertices={max_vertices} must be at least 2 or None')
        super().__init__(student, teacher, teacher_ckpt, distill_loss, virtual_view,
                         virtual_view_needed=virtual_det_loss,
                         distill_warmup_iters=distill_warmup_iters,
                         gather_vertices=gather_vertices, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if isinstance(self.virtual_view, PipelineView):
            raise TypeError(
                f'{type(self.virtual_view).__name__}: a view made by the data pipeline may '
                'move the objects, and the anchors are not projected into it; use the '
                "in-model view, virtual_view=dict(type='PhotometricRandAugment', num_ops=2)")
        if logit_row == 'classes' and self.distill_loss.needs_labels:
            raise ValueError(
                f"{type(self.distill_loss).__name__} reads each row's class, background "
                "included, and logit_row='classes' has no background column: use "
                "logit_row='background'")
        self.logit_row = logit_row
        self.negative_ratio, self.max_vertices = negative_ratio, max_vertices
        self.virtual_det_loss = virtual_det_loss
        if hasattr(self.distill_loss, 'background_label'):
            self.distill_loss.background_label = self.student.bbox_head.num_classes

    def check_compatible(self, student, teacher) -> None:
        for role, model in (('student', student), ('teacher', teacher)):
            head = getattr(model, 'bbox_head', None)
            if not isinstance(head, AnchorHead) or getattr(model, 'roi_head', None) is not None:
                raise TypeError(f'the {role} ({type(model).__name__}) is not a one-stage '
                                'detector with an anchor head (RetinaNet)')
            if type(head).get_targets is not AnchorHead.get_targets:
                raise TypeError(
                    f"the {role}'s {type(head).__name__} assigns its anchors its own way "
                    '(it overrides get_targets, as ATSS and GFL do); OneStageDistiller '
                    'reads the assignment of AnchorHead (RetinaHead)')
            if not head.use_sigmoid_cls:
                raise TypeError(f"the {role}'s {type(head).__name__} has a softmax "
                                'classifier; OneStageDistiller reads sigmoid anchor logits '
                                "(loss_cls with use_sigmoid=True, as RetinaNet's)")
        s_head, t_head = student.bbox_head, teacher.bbox_head
        if s_head.num_classes != t_head.num_classes:
            raise ValueError(f'the teacher predicts {t_head.num_classes} classes and the '
                             f'student {s_head.num_classes}: anchor logits are matched '
                             'class by class, so set the same num_classes in both heads')
        s_layout, t_layout = _anchor_layout(s_head), _anchor_layout(t_head)
        differ = [f'{key}: student {s_layout[key]}, teacher {t_layout[key]}'
                  for key in s_layout if s_layout[key] != t_layout[key]]
        if differ:
            raise ValueError(
                'the teacher and the student place different anchors ('
                + '; '.join(differ) + '): the teacher scores the anchors the student '
                "assigned, so give both heads the same anchor_generator (and necks with "
                'the same output levels)')

    # -- vertices ------------------------------------------------------------

    def assign_anchors(self, featmap_sizes: List[torch.Size], data_samples: List,
                       device: torch.device) -> Tuple[Tensor, Tensor]:
        """Every anchor's class as the student head's loss assigns it.

        Returns:
            tuple: ``labels``, shape (N, A) over the N images and the A
            anchors of all levels (level by level, each in mmdet's
            (y, x, anchor) order), ``num_classes`` for background; and
            ``counted``, bool (N, A): the anchor enters the classification
            loss (inside the image and not ignored by the assigner).
        """
        head = self.student.bbox_head
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(data_samples)
        anchors, valid_flags = head.get_anchors(featmap_sizes, img_metas, device=device)
        labels, label_weights = head.get_targets(anchors, valid_flags, gt_instances,
                                                 img_metas, gt_ignore)[:2]
        return torch.cat(labels, 1), torch.cat(label_weights, 1) > 0

    def select_vertices(self, labels: Tensor, counted: Tensor) -> Tensor:
        """Flat indices (into N x A) of the anchors that become vertices:
        every positive anchor and a capped random sample of negative ones,
        in increasing order.

        Args:
            labels (Tensor): Assigned class per anchor, shape (N, A) or (N*A,).
            counted (Tensor): Bool, same shape: the anchor is in the loss.
        """
        labels, counted = labels.flatten(), counted.flatten()
        background = self.student.bbox_head.num_classes
        positives = (counted & (labels < background)).nonzero(as_tuple=True)[0]
        negatives = (counted & (labels == background)).nonzero(as_tuple=True)[0]
        if self.max_vertices is not None and len(positives) > self.max_vertices:
            keep = torch.randperm(len(positives), device=labels.device)[:self.max_vertices]
            positives = positives[keep]
        num_negatives = max(math.ceil(self.negative_ratio * len(positives)),
                            2 - len(positives))
        if self.max_vertices is not None:
            num_negatives = min(num_negatives, self.max_vertices - len(positives))
        chosen = torch.randperm(len(negatives), device=labels.device)[:num_negatives]
        return torch.cat([positives, negatives[chosen]]).sort().values

    def anchor_logits(self, cls_scores: List[Tensor], index: Tensor, num_anchors: List[int],
                      image_offset: int = 0) -> Tensor:
        """The classification logits of the chosen anchors, read from the
        head's output maps without flattening them.

        Args:
            cls_scores (list[Tensor]): Per level, shape (M, K*C, H, W): K
                anchors per location, C classes, M images (both views
                stacked, real first, when the virtual view is computed).
            index (Tensor): Flat indices into (N, A) as
                :meth:`select_vertices` gives them, A = sum(num_anchors).
            num_anchors (list[int]): Anchors per image on each level, H*W*K.
            image_offset (int): Added to the image index: N picks the same
                anchors on the virtual view.

        Returns:
            Tensor: Shape (V, C), row v the logits of anchor ``index[v]``.
        """
        total = sum(num_anchors)
        image, anchor = index // total + image_offset, index % total
        per_location = self.student.bbox_head.num_base_priors
        pieces, positions, start = [], [], 0
        for scores, count in zip(cls_scores, num_anchors):
            in_level = ((anchor >= start) & (anchor < start + count)).nonzero(as_tuple=True)[0]
            local = anchor[in_level] - start
            num_images, _, height, width = scores.shape
            # mmdet's order within a level: y, then x, then the anchor at (y, x)
            y, x = local // (width * per_location), (local // per_location) % width
            maps = scores.view(num_images, per_location, -1, height, width)
            pieces.append(maps[image[in_level], local % per_location, :, y, x])
            positions.append(in_level)
            start += count
        return torch.cat(pieces)[torch.cat(positions).argsort()]

    def to_logit_rows(self, anchor_logits: Tensor) -> Tensor:
        """The rows the graph reads (see ``logit_row``): (V, C) -> (V, C + 1)
        with a zero background logit appended, or (V, C) as it is."""
        if self.logit_row == 'classes':
            return anchor_logits
        return torch.cat([anchor_logits, anchor_logits.new_zeros(len(anchor_logits), 1)], 1)

    # -- the training step -------------------------------------------------

    def _check_same_maps(self, student_scores: List[Tensor], teacher_scores: List[Tensor]):
        student_sizes = [tuple(s.shape[-2:]) for s in student_scores]
        teacher_sizes = [tuple(t.shape[-2:]) for t in teacher_scores]
        if student_sizes != teacher_sizes:
            raise ValueError(
                f"the teacher's head output maps have sizes {teacher_sizes} and the "
                f"student's {student_sizes}: anchors at the same index would lie at "
                'different places. Give both the same neck levels and backbone strides, '
                "and the teacher's data_preprocessor the student's pad_size_divisor")

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        if len(data_samples) == 0 or inputs.shape[0] == 0:
            raise ValueError('empty batch: the dataloader returned no images')
        num_images = inputs.shape[0]
        image_sizes = [sample.metainfo['img_shape'][:2] for sample in data_samples]
        virtual = self.make_virtual_inputs(inputs, image_sizes)
        with_virtual = virtual is not None
        real_feats, all_feats = self.student_features(inputs, virtual)
        head = self.student.bbox_head
        cls_scores, bbox_preds = head(all_feats if with_virtual else real_feats)

        gt_instances, gt_ignore, img_metas = unpack_gt_instances(data_samples)

        def detection_losses(images: slice) -> Dict[str, list]:
            return head.loss_by_feat([s[images] for s in cls_scores],
                                     [p[images] for p in bbox_preds],
                                     gt_instances, img_metas, gt_ignore)

        losses = detection_losses(slice(0, num_images))
        if self.virtual_det_loss:  # same targets: the photometric view moves no box
            losses.update({f'{k}_virtual': v for k, v in
                           detection_losses(slice(num_images, None)).items()})

        with torch.no_grad():
            teacher_feats = self.teacher_features(inputs, virtual, image_sizes)
            teacher_scores = self.teacher.bbox_head(teacher_feats)[0]
        self._check_same_maps(cls_scores, teacher_scores)

        featmap_sizes = [s.shape[-2:] for s in cls_scores]
        labels, counted = self.assign_anchors(featmap_sizes, data_samples, inputs.device)
        num_anchors = [s.shape[-2] * s.shape[-1] * head.num_base_priors for s in cls_scores]
        index = self.select_vertices(labels, counted)

        def rows(scores: List[Tensor], image_offset: int = 0) -> Tensor:
            return self.to_logit_rows(self.anchor_logits(scores, index, num_anchors,
                                                         image_offset))

        distill_inputs = dict(student_logits=rows(cls_scores),
                              teacher_logits=rows(teacher_scores),
                              labels=labels.flatten()[index])
        if with_virtual:
            distill_inputs.update(student_virtual_logits=rows(cls_scores, num_images),
                                  teacher_virtual_logits=rows(teacher_scores, num_images))
        losses.update(self.distill(**distill_inputs))
        return losses
