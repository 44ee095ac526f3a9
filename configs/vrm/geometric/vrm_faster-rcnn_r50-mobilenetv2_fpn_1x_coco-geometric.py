# VRM r50-mobilenetv2 on COCO with the geometric virtual view: RandAugment with rotations,
# shears and translations made by the data pipeline, the student's RoIs projected
# into the virtual image (docs/user_guide.md, "The geometric virtual view").
_base_ = ['../vrm_faster-rcnn_r50-mobilenetv2_fpn_1x_coco.py', '../../_base_/coco_two_view_pipeline.py']

model = dict(virtual_view=dict(_delete_=True, type='DetectionPipelineView', min_inside=0.5))
train_dataloader = dict(dataset=dict(pipeline=_base_.two_view_train_pipeline))
