# DIST: ResNet-34 -> ResNet-18 on ImageNet-1k, the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_resnet34-resnet18_in1k.py', '../_base_/losses/dist_in1k.py']
model = dict(distill_loss=_base_.dist_loss,
             student=dict(head=dict(loss=dict(loss_weight=_base_.dist_ce_weight))))
