# Toy student: ResNet-18 layout at width 8 (about 1/16 of the teacher's backbone FLOPs), FPN.
_base_ = [
    './_base_/toy_faster-rcnn_w8.py', './_base_/toy_coco_detection.py',
    './_base_/toy_schedule.py'
]
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
