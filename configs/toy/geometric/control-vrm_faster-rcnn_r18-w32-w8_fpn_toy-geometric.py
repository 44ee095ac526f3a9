# Control + VRM with the geometric view: the control arm's losses on both views,
# plus VRM on the projected RoIs.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py']

model = dict(virtual_det_loss=True)
