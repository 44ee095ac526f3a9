# The toy set's train pipeline with two views per image (the real one and the
# geometric virtual view; see configs/_base_/geometric_virtual_view.py).
_base_ = ['../../_base_/geometric_virtual_view.py']

two_view_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    _base_.two_view_branches,
]
