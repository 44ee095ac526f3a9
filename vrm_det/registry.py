"""Registration of vrm_det modules into the OpenMMLab registries.

Models are registered in mmdet's ``MODELS`` and, where mmpretrain is
installed, in mmpretrain's ``MODELS`` too, so that a config of either
codebase builds them by their bare ``type`` name.
"""
from typing import List

from mmdet.registry import MODELS as MMDET_MODELS


def _model_registries() -> List:
    registries = [MMDET_MODELS]
    try:
        from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    except ImportError:
        return registries
    registries.append(MMPRETRAIN_MODELS)
    return registries


MODEL_REGISTRIES = _model_registries()
MMPRETRAIN_AVAILABLE = len(MODEL_REGISTRIES) > 1


def register_model(cls):
    """Class decorator: register ``cls`` in every model registry available."""
    for registry in MODEL_REGISTRIES:
        registry.register_module(module=cls)
    return cls
