# KD on RoI logits on the single-class toy dataset: the VRM config with the loss swapped.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy-1cls.py']

model = dict(distill_loss=dict(_delete_=True, type='KDLoss', temperature=1.0, loss_weight=1.0))
