# DKD on RoI logits: the VRM toy config with the loss swapped (published setting: see the base).
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy.py', '../_base_/dkd_roi_distill.py']

model = dict(distill_loss=_base_.dkd_loss)
