# Toy Cascade R-CNN student: ResNet-18 layout at width 8, FPN, 3 stages.
_base_ = [
    './_base_/toy_cascade-rcnn_w8.py', '../_base_/toy_coco_detection.py',
    '../_base_/toy_schedule.py'
]
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
