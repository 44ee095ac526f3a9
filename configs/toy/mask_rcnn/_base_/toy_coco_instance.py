# The toy COCO dataset with its instance masks (tools/make_toy_coco.py writes a
# `segmentation` for every object; a set written before it did has none:
# rewrite it with --overwrite), evaluated on boxes and masks.
_base_ = '../../_base_/toy_coco_detection.py'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(metric=['bbox', 'segm'])
test_evaluator = val_evaluator
