# KD on RoI logits: the VRM toy config with the loss swapped.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy.py']

model = dict(distill_loss=dict(_delete_=True, type='KDLoss', temperature=1.0, loss_weight=1.0))
