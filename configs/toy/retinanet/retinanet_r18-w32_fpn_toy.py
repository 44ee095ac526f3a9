# Toy teacher: RetinaNet, ResNet-18 layout at width 32, FPN.
_base_ = [
    './_base_/toy_retinanet.py', '../_base_/toy_coco_detection.py',
    '../_base_/toy_schedule.py'
]
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
