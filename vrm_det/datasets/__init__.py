from .synthetic import synthetic_detection_batch
from .toy_coco import TOY_CLASSES, make_toy_coco

__all__ = ['TOY_CLASSES', 'make_toy_coco', 'synthetic_detection_batch']
