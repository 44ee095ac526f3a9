from .photometric import PHOTOMETRIC_OPS, PhotometricRandAugment
from .pipeline import PipelineView, ViewwiseDataPreprocessor, split_views

__all__ = ['PHOTOMETRIC_OPS', 'PhotometricRandAugment', 'PipelineView',
           'ViewwiseDataPreprocessor', 'split_views']
