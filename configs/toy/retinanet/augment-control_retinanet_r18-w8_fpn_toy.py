# Control arm for the toy RetinaNet comparison: the student sees VRM's virtual view
# (the same photometric RandAugment, taken with its own detection losses) but gets
# nothing from the teacher. VRM is the only method whose student sees augmented
# images; this arm tells how much of a gain the augmentation alone explains.
_base_ = ['./vrm_retinanet_r18-w32-w8_fpn_toy.py']

model = dict(
    distill_loss=dict(_delete_=True, type='KDLoss', loss_weight=0.0),  # no teacher signal
    virtual_det_loss=True)
