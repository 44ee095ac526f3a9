# KD on RoI logits, r101 -> r50: the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_faster-rcnn_r101-r50_fpn_1x_coco.py', '../_base_/kd_roi_distill.py']
model = dict(distill_loss=_base_.kd_loss)
