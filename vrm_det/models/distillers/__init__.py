from .base_distiller import BaseDistiller
from .two_stage_distiller import TwoStageDistiller

__all__ = ['BaseDistiller', 'TwoStageDistiller']
