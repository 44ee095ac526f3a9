from .photometric import PHOTOMETRIC_OPS, PhotometricRandAugment
from .pipeline import PipelineView, ViewwiseDataPreprocessor, split_views
from .projection import (
                         DetectionPipelineView,
                         ProjectedRoIs,
                         project_rois,
                         project_sampling_results,
                         real_to_virtual_homographies,
)

__all__ = ['DetectionPipelineView', 'PHOTOMETRIC_OPS', 'PhotometricRandAugment', 'PipelineView',
           'ProjectedRoIs', 'ViewwiseDataPreprocessor', 'project_rois',
           'project_sampling_results', 'real_to_virtual_homographies', 'split_views']
