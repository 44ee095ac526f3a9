# VRM: Faster R-CNN r50 FPN (teacher) -> mobilenetv2 FPN (student), 1x COCO.
_base_ = ['../students/faster-rcnn_mobilenetv2_fpn_1x_coco.py', '../_base_/vrm_roi_distill.py']

# The trained teacher, e.g. mmdet's model-zoo faster-rcnn_r50_fpn_1x_coco checkpoint.
teacher_ckpt = 'checkpoints/faster-rcnn_r50_fpn_1x_coco.pth'

model = dict(
    _delete_=True,
    type='TwoStageDistiller',
    student=_base_.model,
    teacher='mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.distill_loss,
    virtual_view=_base_.virtual_view,
    roi_vertices='all',
    distill_warmup_iters=500)
