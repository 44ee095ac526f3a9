# DKD on RoI logits (RoI labels from the student's sampler), r101 -> r50.
_base_ = ['../vrm/vrm_faster-rcnn_r101-r50_fpn_1x_coco.py']
model = dict(distill_loss=dict(_delete_=True, type='DKDLoss', alpha=1.0, beta=8.0, temperature=1.0))
