# VRM: Cascade R-CNN r101 FPN (teacher) -> r50 FPN (student), 1x COCO.
# One relation graph per stage on that stage's RoIs, each stage's VRM losses
# weighted by the cascade's stage_loss_weights (1, 0.5, 0.25) and logged as
# s0.loss_vrm_sample, ... (docs/detectors.md).
_base_ = ['./cascade-rcnn_r50_fpn_1x_coco.py', '../_base_/vrm_roi_distill.py']

# The trained teacher, e.g. mmdet's model-zoo cascade-rcnn_r101_fpn_1x_coco checkpoint.
teacher_ckpt = 'checkpoints/cascade-rcnn_r101_fpn_1x_coco.pth'

model = dict(
    _delete_=True,
    type='CascadeDistiller',
    student=_base_.model,
    teacher='mmdet::cascade_rcnn/cascade-rcnn_r101_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.distill_loss,
    virtual_view=_base_.virtual_view,
    distill_stages='all',
    roi_vertices='all',
    distill_warmup_iters=500)

# The per-stage statistics (DistillStatsHook records the keys it is given).
custom_hooks = [
    dict(type='DistillStatsHook', interval=50,
         keys=['s0.loss_vrm_sample', 's0.loss_vrm_class', 's0.kept_fraction',
               's1.loss_vrm_sample', 's1.loss_vrm_class', 's1.kept_fraction',
               's2.loss_vrm_sample', 's2.loss_vrm_class', 's2.kept_fraction',
               'distill_grad_norm'])
]
