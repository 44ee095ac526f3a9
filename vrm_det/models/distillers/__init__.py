from .base_distiller import BaseDistiller
from .inspection import capture_distill_inputs
from .two_stage_distiller import TwoStageDistiller

__all__ = ['BaseDistiller', 'TwoStageDistiller', 'capture_distill_inputs']
