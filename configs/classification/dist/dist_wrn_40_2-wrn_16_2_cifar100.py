# DIST: WRN-40-2 -> WRN-16-2 on CIFAR-100, the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_wrn_40_2-wrn_16_2_cifar100.py', '../_base_/losses/dist_cifar100.py']
model = dict(distill_loss=_base_.dist_loss,
             student=dict(head=dict(loss=dict(loss_weight=_base_.dist_ce_weight))))
