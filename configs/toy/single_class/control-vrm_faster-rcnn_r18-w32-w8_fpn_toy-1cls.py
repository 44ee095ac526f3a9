# Control + VRM on the single-class toy set: the control's losses on both views,
# plus VRM.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy-1cls.py']

model = dict(virtual_det_loss=True)
