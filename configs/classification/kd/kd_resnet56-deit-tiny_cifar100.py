# KD: ResNet56 -> DeiT-Tiny on CIFAR-100, the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_resnet56-deit-tiny_cifar100.py', '../_base_/losses/kd_cifar100.py']
model = dict(distill_loss=_base_.kd_loss,
             student=dict(head=dict(loss=dict(loss_weight=_base_.kd_ce_weight))))
