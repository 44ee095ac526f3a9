"""The call signature shared by every distillation loss."""
from typing import Dict, Optional

import torch
from torch import Tensor, nn

from vrm_det.functional.validation import check_logits


class DistillLoss(nn.Module):
    """Base of the distillation losses: one signature, checked inputs.

    Subclasses implement :meth:`compute`. Every loss is called as::

        loss(student_logits, teacher_logits, student_virtual_logits=None,
             teacher_virtual_logits=None, labels=None)

    and returns a dict whose entries with ``'loss'`` in their names are to be
    optimised; the other entries are detached diagnostics.

    Attributes:
        uses_virtual_view (bool): Whether the loss reads the virtual view.
            Distillers skip computing the virtual view when no part of the
            training needs it.
        needs_labels (bool): Whether ``labels`` is required.
    """
    uses_virtual_view = False
    needs_labels = False

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                student_virtual_logits: Optional[Tensor] = None,
                teacher_virtual_logits: Optional[Tensor] = None,
                labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Check the inputs and compute the loss.

        Args:
            student_logits (Tensor): Student logits, real view, shape (B, C).
            teacher_logits (Tensor): Teacher logits, real view, shape (B, C).
            student_virtual_logits (Tensor, optional): Student logits on the
                virtual view, shape (B, C).
            teacher_virtual_logits (Tensor, optional): Teacher logits on the
                virtual view, shape (B, C).
            labels (Tensor, optional): Ground-truth class per row, shape (B,).

        Returns:
            dict[str, Tensor]: Losses and diagnostics.
        """
        name = type(self).__name__
        check_logits('student_logits', student_logits)
        check_logits('teacher_logits', teacher_logits, student_logits)
        if self.uses_virtual_view:
            if student_virtual_logits is None or teacher_virtual_logits is None:
                raise ValueError(f'{name} needs student_virtual_logits and '
                                 'teacher_virtual_logits (the virtual view); '
                                 'configure a virtual_view in the distiller')
            check_logits('student_virtual_logits', student_virtual_logits, student_logits)
            check_logits('teacher_virtual_logits', teacher_virtual_logits, student_logits)
        if self.needs_labels:
            if labels is None:
                raise ValueError(f'{name} needs the ground-truth labels of the rows')
            if labels.shape != student_logits.shape[:1]:
                raise ValueError(f'labels has shape {tuple(labels.shape)}, expected '
                                 f'({student_logits.shape[0]},) to match student_logits')
        # The losses run in float32 outside autocast: under mixed precision the
        # logits may arrive in half precision, too coarse for normalised edges.
        def full(logits):
            return None if logits is None else logits.float()

        with torch.autocast(student_logits.device.type, enabled=False):
            return self.compute(full(student_logits), full(teacher_logits).detach(),
                                full(student_virtual_logits),
                                None if teacher_virtual_logits is None
                                else full(teacher_virtual_logits).detach(),
                                labels)

    def compute(self, student: Tensor, teacher: Tensor, student_virtual: Optional[Tensor],
                teacher_virtual: Optional[Tensor],
                labels: Optional[Tensor]) -> Dict[str, Tensor]:
        raise NotImplementedError
