# Control arm for the geometric view: the student's own detection losses on the
# real view and on the geometric virtual view (ground truth projected with it),
# nothing from the teacher.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py']

model = dict(
    distill_loss=dict(_delete_=True, type='KDLoss', loss_weight=0.0),  # no teacher signal
    virtual_det_loss=True)
