# VRM: Mask R-CNN r101 FPN (teacher) -> r50 FPN (student), 1x COCO.
# The bbox head's RoI logits are distilled as for Faster R-CNN; the student's
# mask head trains on its own mask loss (docs/detectors.md).
_base_ = ['./mask-rcnn_r50_fpn_1x_coco.py', '../_base_/vrm_roi_distill.py']

# The trained teacher, e.g. mmdet's model-zoo mask-rcnn_r101_fpn_1x_coco checkpoint.
teacher_ckpt = 'checkpoints/mask-rcnn_r101_fpn_1x_coco.pth'

model = dict(
    _delete_=True,
    type='TwoStageDistiller',
    student=_base_.model,
    teacher='mmdet::mask_rcnn/mask-rcnn_r101_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.distill_loss,
    virtual_view=_base_.virtual_view,
    roi_vertices='all',
    distill_warmup_iters=500)
