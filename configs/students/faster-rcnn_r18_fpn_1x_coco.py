# Student alone: Faster R-CNN ResNet-18 FPN, 1x COCO (the baseline of the r101-r18 pair).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(in_channels=[64, 128, 256, 512]))
