# The toy COCO-format dataset written by tools/make_toy_coco.py (128x128 images).
dataset_type = 'CocoDataset'
data_root = 'data/toy_coco/'
metainfo = dict(classes=('square', 'disc', 'triangle', 'ring', 'cross'))
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type, data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8), pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type, data_root=data_root, metainfo=metainfo,
        ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
        test_mode=True, pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                     metric='bbox', format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator
