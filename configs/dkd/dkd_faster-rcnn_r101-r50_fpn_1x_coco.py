# DKD on RoI logits (RoI labels from the student's sampler), r101 -> r50.
_base_ = ['../vrm/vrm_faster-rcnn_r101-r50_fpn_1x_coco.py', '../_base_/dkd_roi_distill.py']
model = dict(distill_loss=_base_.dkd_loss)
