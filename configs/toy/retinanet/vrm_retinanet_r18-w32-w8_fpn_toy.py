# VRM: toy RetinaNet teacher (width 32) -> toy student (width 8), on anchor logits.
_base_ = ['./retinanet_r18-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/retinanet_r18-w32_fpn_toy/iter_600.pth'

model = dict(
    _delete_=True,
    type='OneStageDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/retinanet_r18-w32_fpn_toy.py',
    teacher_ckpt=teacher_ckpt,
    # The Faster R-CNN toy's VRM settings (configs/toy/vrm_faster-rcnn_r18-w32-w8_fpn_toy.py).
    distill_loss=dict(type='VRMLoss', alpha=1.0, beta=0.5, keep_percentile=95,
                      edge_floor=0.5, short_edges='match'),
    virtual_view=dict(type='PhotometricRandAugment', num_ops=2, magnitude=0.5),
    # Rows of C class logits and a zero background logit (docs/detectors_retinanet.md).
    logit_row='background',
    # Every positive anchor, three negatives per positive (SSD's hard-negative
    # ratio, here sampled at random), at most 1024 vertices.
    negative_ratio=3.0,
    max_vertices=1024,
    distill_warmup_iters=50)

custom_hooks = [dict(type='DistillStatsHook', interval=1)]
