from vrm_det.registry import MMPRETRAIN_AVAILABLE

from .base_distiller import BaseDistiller
from .inspection import capture_distill_inputs
from .two_stage_distiller import TwoStageDistiller

__all__ = ['BaseDistiller', 'TwoStageDistiller', 'capture_distill_inputs']

if MMPRETRAIN_AVAILABLE:
    from .image_classifier_distiller import ImageClassifierDistiller  # noqa: F401

    __all__.append('ImageClassifierDistiller')
