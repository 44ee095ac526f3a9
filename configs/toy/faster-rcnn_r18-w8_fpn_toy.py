# Toy student: ResNet-18 layout at width 8 (about 1/16 of the teacher's backbone FLOPs), FPN.
_base_ = [
    './_base_/toy_faster-rcnn.py', './_base_/toy_coco_detection.py',
    './_base_/toy_schedule.py'
]
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=32),
                  bbox_head=dict(in_channels=32, fc_out_channels=128)))
