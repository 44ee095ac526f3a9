# Student alone: Cascade R-CNN ResNet-50 FPN, 1x COCO (mmdet's config; the r101-r50 baseline).
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
