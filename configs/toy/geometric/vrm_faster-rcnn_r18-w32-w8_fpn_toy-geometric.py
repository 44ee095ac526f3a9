# VRM on the toy set with the geometric virtual view: the pipeline makes the
# virtual image (RandAugment with rotations, shears and translations) and the
# student's RoIs are projected into it (docs/user_guide.md, "The geometric
# virtual view").
_base_ = ['../vrm_faster-rcnn_r18-w32-w8_fpn_toy.py', '../_base_/toy_two_view_pipeline.py']

model = dict(virtual_view=dict(_delete_=True, type='DetectionPipelineView', min_inside=0.5))
train_dataloader = dict(dataset=dict(pipeline=_base_.two_view_train_pipeline))
