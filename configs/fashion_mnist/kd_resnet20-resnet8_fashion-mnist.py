# KD: the VRM config with the loss swapped. Hinton et al.'s loss at the KD
# benchmark's CIFAR setting: T 4, KD weight 0.9 and cross-entropy weight 0.1
# (megvii-research/mdistiller, mdistiller/engine/cfg.py: KD.TEMPERATURE 4,
# KD.LOSS.CE_WEIGHT 0.1, KD.LOSS.KD_WEIGHT 0.9).
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(
    student=dict(head=dict(loss=dict(loss_weight=0.1))),
    distill_loss=dict(_delete_=True, type='KDLoss', temperature=4.0, loss_weight=0.9))
