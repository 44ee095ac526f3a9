# VRM: toy teacher (width 32) -> toy student (width 8), on RoI logits.
_base_ = ['./faster-rcnn_r18-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/faster-rcnn_r18-w32_fpn_toy/iter_600.pth'

model = dict(
    _delete_=True,
    type='TwoStageDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/faster-rcnn_r18-w32_fpn_toy.py',
    teacher_ckpt=teacher_ckpt,
    # Weights that put the VRM terms (each about 0.5 to 2 early on) at the scale of
    # the detection losses.
    # edge_floor: the detection stabiliser (a deviation from the paper's unit
    # edges; docs/user_guide.md, "Stability").
    distill_loss=dict(type='VRMLoss', alpha=1.0, beta=0.5, keep_percentile=95,
                      edge_floor=0.5, short_edges='match'),
    virtual_view=dict(type='PhotometricRandAugment', num_ops=2, magnitude=0.5),
    roi_vertices='all',
    distill_warmup_iters=50)

custom_hooks = [dict(type='DistillStatsHook', interval=1)]
