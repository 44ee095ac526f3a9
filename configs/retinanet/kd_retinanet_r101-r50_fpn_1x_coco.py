# KD on anchor logits, RetinaNet r101 -> r50: the VRM config with the loss swapped,
# at the project's detection KD setting (configs/_base_/kd_roi_distill.py: Chen et
# al., NeurIPS 2017, T = 1, weight 1). The rows carry a zero background logit, so
# KD's softmax keeps every class's sigmoid odds against background
# (docs/detectors_retinanet.md, "The KD-style baseline").
_base_ = ['./vrm_retinanet_r101-r50_fpn_1x_coco.py', '../_base_/kd_roi_distill.py']
model = dict(distill_loss=_base_.kd_loss)
