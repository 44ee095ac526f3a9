"""Distillation of an mmpretrain image classifier on its logits."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import Tensor

from vrm_det.models.virtual_views import (
    DetectionPipelineView,
    PipelineView,
    ViewwiseDataPreprocessor,
)
from vrm_det.registry import register_model

from .base_distiller import BaseDistiller


@register_model
class ImageClassifierDistiller(BaseDistiller):
    """Distil an mmpretrain ``ImageClassifier``: the batch's images are the
    graph's vertices.

    One step: the student's backbone and neck run on the real images and, when
    the loss needs it, on the virtual view (batched or separately, see
    :meth:`BaseDistiller.student_features`); its head gives the logits and its
    own classification loss on the real view; the teacher scores both views
    without gradient in one forward; the four logit matrices and the labels go
    to ``distill_loss``. Teacher loading, freezing and the virtual view are
    :class:`BaseDistiller`'s, shared with the detection distiller.

    The virtual view is made either in the model (``virtual_view`` an
    augmentation such as ``PhotometricRandAugment``, applied to the
    preprocessed batch) or by the data pipeline, as the paper makes it
    (``virtual_view=dict(type='PipelineView')``: the pipeline's ``MultiView``
    gives every image a RandAugment copy, geometric operations included; the
    data preprocessor then normalises each view alike).

    Args:
        student (dict): Config of the student classifier.
        teacher (dict | str): Config (or config file) of the teacher classifier.
        teacher_ckpt (str): Checkpoint of the teacher.
        distill_loss (dict): Config of the distillation loss.
        virtual_view (dict, optional): Config of the virtual-view augmentation,
            or ``dict(type='PipelineView')`` for views made by the pipeline.
        distill_warmup_iters (int): Linear warm-up of the distillation weight.
        virtual_cls_loss (bool): Also train the student with its own
            classification loss on the virtual view. With a zero-weight
            distillation loss this is the control arm of a comparison: the
            student sees VRM's augmented images but nothing of the teacher.
        gather_vertices (bool | str): One graph over every process's vertices in a
            multi-process run (see :class:`BaseDistiller`).
        data_preprocessor (dict, optional): The student's data preprocessor
            when its config names none (see :class:`BaseDistiller`).
        init_cfg (dict, optional): Initialisation config.
    """
    model_registry = MMPRETRAIN_MODELS

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, virtual_view: Optional[dict] = None,
                 distill_warmup_iters: int = 0, virtual_cls_loss: bool = False,
                 gather_vertices: Union[bool, str] = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(student, teacher, teacher_ckpt, distill_loss, virtual_view,
                         virtual_view_needed=virtual_cls_loss,
                         distill_warmup_iters=distill_warmup_iters,
                         gather_vertices=gather_vertices, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        self.virtual_cls_loss = virtual_cls_loss
        if isinstance(self.virtual_view, DetectionPipelineView):
            raise TypeError("DetectionPipelineView projects RoIs into a detection pipeline's "
                            "view; a classifier's pipeline views are marked "
                            "dict(type='PipelineView')")
        self.views_from_pipeline = isinstance(self.virtual_view, PipelineView)
        if self.views_from_pipeline:
            self.data_preprocessor = ViewwiseDataPreprocessor(self.data_preprocessor)

    def check_compatible(self, student, teacher) -> None:
        for role, model in (('student', student), ('teacher', teacher)):
            if not hasattr(getattr(model, 'head', None), 'num_classes'):
                raise TypeError(f'the {role} ({type(model).__name__}) is not an image '
                                'classifier with a classification head')
        s_classes, t_classes = student.head.num_classes, teacher.head.num_classes
        if s_classes != t_classes:
            raise ValueError(f'the teacher predicts {t_classes} classes and the student '
                             f'{s_classes}: logits are matched class by class, so set the '
                             'same num_classes in both heads')

    def _real_and_virtual(self, inputs: Union[Tensor, Sequence[Tensor]]
                          ) -> Tuple[Tensor, Optional[Tensor]]:
        """The real batch and its virtual view (None when nothing uses it)."""
        views = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if self.views_from_pipeline and len(views) != 2:
            raise ValueError(
                f'the virtual view comes from the data pipeline (PipelineView) but the batch '
                f"has {len(views)} view(s): end train_pipeline with dict(type='MultiView', "
                "num_views=[1, 1], transforms=[[], [dict(type='RandAugment', ...)]]) and "
                "dict(type='PackInputs')")
        if not self.views_from_pipeline and len(views) != 1:
            raise ValueError(
                f'the batch has {len(views)} views but virtual_view is not PipelineView: set '
                "model.virtual_view=dict(type='PipelineView') to use the pipeline's views, or "
                'remove MultiView from train_pipeline for the in-model view')
        real = views[0]
        if real.shape[0] == 0:
            raise ValueError('empty batch: the dataloader returned no images')
        if not self.uses_virtual_view:
            return real, None
        if self.views_from_pipeline:
            if views[1].shape != real.shape:
                raise ValueError(f'the virtual view has shape {tuple(views[1].shape)} and the '
                                 f'real one {tuple(real.shape)}: give both views the same size')
            return real, views[1]
        return real, self.make_virtual_inputs(real)

    def loss(self, inputs: Union[Tensor, Sequence[Tensor]],
             data_samples: List) -> Dict[str, Tensor]:
        inputs, virtual = self._real_and_virtual(inputs)
        num_images = inputs.shape[0]
        real_feats, all_feats = self.student_features(inputs, virtual)
        losses = self.student.head.loss(real_feats, data_samples)
        if self.virtual_cls_loss:
            virtual_feats = tuple(level[num_images:] for level in all_feats)
            losses.update({f'{key}_virtual': value for key, value in
                           self.student.head.loss(virtual_feats, data_samples).items()})

        student_scores = self.student.head(all_feats if virtual is not None else real_feats)
        with torch.no_grad():
            teacher_scores = self.teacher.head(self.teacher_features(inputs, virtual))
        distill_inputs = dict(student_logits=student_scores[:num_images],
                              teacher_logits=teacher_scores[:num_images],
                              labels=torch.cat([s.gt_label for s in data_samples]))
        if virtual is not None:
            distill_inputs.update(student_virtual_logits=student_scores[num_images:],
                                  teacher_virtual_logits=teacher_scores[num_images:])
        losses.update(self.distill(**distill_inputs))
        return losses
