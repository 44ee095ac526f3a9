# The toy student's model: the toy RetinaNet at width 8 (about 1/16 of the
# width-32 teacher's backbone FLOPs).
_base_ = './toy_retinanet.py'

model = dict(
    backbone=dict(base_channels=8),
    neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))
