# KD on anchor logits: the VRM toy config with the loss swapped, at the setting
# the project's KD baseline uses for detection (Chen et al., NeurIPS 2017: T = 1,
# soft and hard losses weighted equally; configs/_base_/kd_roi_distill.py). Each
# row is the C sigmoid logits and a zero background logit, so KD's softmax over
# it is the sigmoid's binary distribution with one class and keeps every class's
# odds against background with several (docs/detectors_retinanet.md).
_base_ = ['./vrm_retinanet_r18-w32-w8_fpn_toy.py', '../../_base_/kd_roi_distill.py']

model = dict(distill_loss=_base_.kd_loss)
