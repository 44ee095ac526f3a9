# DIST on RoI logits, r50 -> mobilenetv2: the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_faster-rcnn_r50-mobilenetv2_fpn_1x_coco.py', '../_base_/dist_roi_distill.py']
model = dict(distill_loss=_base_.dist_loss)
