from vrm_det.registry import MMPRETRAIN_AVAILABLE

from .base_distiller import BaseDistiller
from .cascade_distiller import CascadeDistiller
from .inspection import capture_distill_inputs
from .one_stage_distiller import OneStageDistiller
from .two_stage_distiller import TwoStageDistiller

__all__ = ['BaseDistiller', 'CascadeDistiller', 'OneStageDistiller', 'TwoStageDistiller',
           'capture_distill_inputs']

if MMPRETRAIN_AVAILABLE:
    from .image_classifier_distiller import ImageClassifierDistiller  # noqa: F401

    __all__.append('ImageClassifierDistiller')
