# Student alone: Faster R-CNN MobileNetV2 FPN, 1x COCO (the r50-mobilenetv2 baseline).
# Stages at strides 4, 8, 16, 32 feed the FPN; batch-norm is frozen as in mmdet's ResNets.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True, type='MobileNetV2', out_indices=(1, 2, 4, 7), norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
