# Iteration-based schedule for the CPU demo: SGD with momentum and the KD
# benchmark's weight decay (5e-4, HobbitLong/RepDistiller train_student.py),
# a short linear warm-up, one step decay at 3/4 of the run.
_base_ = 'mmpretrain::_base_/default_runtime.py'

max_iters = 300
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1))
log_processor = dict(window_size=20, by_epoch=False)
randomness = dict(seed=0)
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
