# VRM: RetinaNet r101 FPN (teacher) -> r50 FPN (student), 1x COCO, on anchor logits.
# The VRM settings are the Faster R-CNN COCO configs' (configs/_base_/vrm_roi_distill.py);
# neither they nor the vertex counts below are the paper's (it has no one-stage results).
_base_ = ['./retinanet_r50_fpn_1x_coco.py', '../_base_/vrm_roi_distill.py']

# The trained teacher, e.g. mmdet's model-zoo retinanet_r101_fpn_1x_coco checkpoint.
teacher_ckpt = 'checkpoints/retinanet_r101_fpn_1x_coco.pth'

model = dict(
    _delete_=True,
    type='OneStageDistiller',
    student=_base_.model,
    teacher='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.distill_loss,
    virtual_view=_base_.virtual_view,
    # C class logits and a zero background logit per row (docs/detectors_retinanet.md).
    logit_row='background',
    # Every positive anchor of the process's images, three sampled negatives per
    # positive, at most 1024 vertices (the two-stage graph's 2 x 512 RoIs).
    negative_ratio=3.0,
    max_vertices=1024,
    distill_warmup_iters=500)
