# Control arm: the student trained on VRM's virtual view too (its own cross
# entropy on both views) with nothing from the teacher. VRM is the only method
# whose student sees the RandAugment views; this arm tells how much of a gain
# the augmentation alone explains.
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(distill_loss=dict(_delete_=True, type='KDLoss', loss_weight=0.0),
             virtual_cls_loss=True)
