# The augmentation control on the Fashion-MNIST detection canvases: VRM's virtual
# view taken with the student's own detection losses, nothing from the teacher.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_fmnist-det.py']

model = dict(
    distill_loss=dict(_delete_=True, type='KDLoss', loss_weight=0.0),  # no teacher signal
    virtual_det_loss=True)
