"""Distillation of an mmpretrain image classifier on its logits."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import Tensor

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

    Args:
        student (dict): Config of the student classifier.
        teacher (dict | str): Config (or config file) of the teacher classifier.
        teacher_ckpt (str): Checkpoint of the teacher.
        distill_loss (dict): Config of the distillation loss.
        virtual_view (dict, optional): Config of the virtual-view augmentation.
        distill_warmup_iters (int): Linear warm-up of the distillation weight.
        gather_vertices (bool): One graph over every process's vertices in a
            multi-process run (see :class:`BaseDistiller`).
        init_cfg (dict, optional): Initialisation config.
    """
    model_registry = MMPRETRAIN_MODELS

    def __init__(self, student: dict, teacher: Union[dict, str], teacher_ckpt: str,
                 distill_loss: dict, virtual_view: Optional[dict] = None,
                 distill_warmup_iters: int = 0, gather_vertices: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(student, teacher, teacher_ckpt, distill_loss, virtual_view,
                         distill_warmup_iters=distill_warmup_iters,
                         gather_vertices=gather_vertices, init_cfg=init_cfg)

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

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        if inputs.shape[0] == 0:
            raise ValueError('empty batch: the dataloader returned no images')
        num_images = inputs.shape[0]
        virtual = self.make_virtual_inputs(inputs)
        real_feats, all_feats = self.student_features(inputs, virtual)
        losses = self.student.head.loss(real_feats, data_samples)

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
