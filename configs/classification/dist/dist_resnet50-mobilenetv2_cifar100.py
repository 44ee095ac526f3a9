# DIST: ResNet50 -> MobileNetV2 on CIFAR-100, the VRM config with the loss swapped.
_base_ = ['../vrm/vrm_resnet50-mobilenetv2_cifar100.py', '../_base_/losses/dist_cifar100.py']
model = dict(distill_loss=_base_.dist_loss,
             student=dict(head=dict(loss=dict(loss_weight=_base_.dist_ce_weight))))
