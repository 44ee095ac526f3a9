# Iteration-based schedule and runtime for the toy dataset, on CPU.
_base_ = 'mmdet::_base_/default_runtime.py'

max_iters = 600
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1)
]
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
                     clip_grad=dict(max_norm=10, norm_type=2))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(type='LogProcessor', window_size=20, by_epoch=False)
randomness = dict(seed=0)
