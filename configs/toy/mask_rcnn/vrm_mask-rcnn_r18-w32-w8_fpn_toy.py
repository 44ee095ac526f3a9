# VRM: toy Mask R-CNN teacher (width 32) -> toy Mask R-CNN student (width 8).
# The bbox head's RoI logits are distilled as for Faster R-CNN
# (../vrm_faster-rcnn_r18-w32-w8_fpn_toy.py, same settings); the student's mask
# head trains on its own mask loss.
_base_ = ['./mask-rcnn_r18-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/mask-rcnn_r18-w32_fpn_toy/iter_600.pth'

model = dict(
    _delete_=True,
    type='TwoStageDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/mask-rcnn_r18-w32_fpn_toy.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=dict(type='VRMLoss', alpha=1.0, beta=0.5, keep_percentile=95,
                      edge_floor=0.5, short_edges='match'),
    virtual_view=dict(type='PhotometricRandAugment', num_ops=2, magnitude=0.5),
    roi_vertices='all',
    distill_warmup_iters=50)

custom_hooks = [dict(type='DistillStatsHook', interval=1)]
