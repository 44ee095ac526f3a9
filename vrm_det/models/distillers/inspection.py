"""Looking inside a distiller: the logit matrices its loss receives."""
from typing import Dict

import torch
from torch import Tensor


@torch.no_grad()
def capture_distill_inputs(distiller, data: dict) -> Dict[str, Tensor]:
    """Run one loss computation on ``data`` and return what ``distill_loss`` got.

    Args:
        distiller: A :class:`~vrm_det.models.distillers.BaseDistiller`.
        data (dict): A batch as the dataloader yields it (``inputs``,
            ``data_samples``), before the data preprocessor.

    Returns:
        dict[str, Tensor]: ``student_logits``, ``teacher_logits`` and, for
        losses that use them, the virtual-view logits and the ``labels``.
    """
    captured = {}

    def hook(module, args, kwargs, output):
        captured.update({key: value.detach() for key, value in kwargs.items()})

    handle = distiller.distill_loss.register_forward_hook(hook, with_kwargs=True)
    try:
        distiller.loss(**distiller.data_preprocessor(data, True))
    finally:
        handle.remove()
    return captured
