# mmpretrain's runtime (hooks, logging, default scope 'mmpretrain'); vrm_det registers its
# models into mmpretrain's registry when imported.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)

# A checkpoint every 10 epochs to resume from (the last two kept) and the best one by top-1,
# instead of one per epoch.
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=2, save_best='auto'))
