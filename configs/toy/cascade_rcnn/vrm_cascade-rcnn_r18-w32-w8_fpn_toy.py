# VRM: toy Cascade R-CNN teacher (width 32) -> toy Cascade R-CNN student (width 8).
# One relation graph per stage, on that stage's RoIs, with the settings of
# ../vrm_faster-rcnn_r18-w32-w8_fpn_toy.py; each stage's VRM losses weighted by
# the cascade's stage_loss_weights (1, 0.5, 0.25) and logged as s0.loss_vrm_sample, ...
_base_ = ['./cascade-rcnn_r18-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/cascade-rcnn_r18-w32_fpn_toy/iter_600.pth'

model = dict(
    _delete_=True,
    type='CascadeDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/cascade-rcnn_r18-w32_fpn_toy.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=dict(type='VRMLoss', alpha=1.0, beta=0.5, keep_percentile=95,
                      edge_floor=0.5, short_edges='match'),
    virtual_view=dict(type='PhotometricRandAugment', num_ops=2, magnitude=0.5),
    distill_stages='all',
    roi_vertices='all',
    distill_warmup_iters=50)

# The per-stage statistics (DistillStatsHook records the keys it is given).
custom_hooks = [
    dict(type='DistillStatsHook', interval=1,
         keys=['s0.loss_vrm_sample', 's0.loss_vrm_class', 's0.kept_fraction',
               's1.loss_vrm_sample', 's1.loss_vrm_class', 's1.kept_fraction',
               's2.loss_vrm_sample', 's2.loss_vrm_class', 's2.kept_fraction',
               'distill_grad_norm'])
]
