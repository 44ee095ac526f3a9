# DKD: the VRM config with the loss swapped, at its authors' CIFAR-100 setting
# (megvii-research/mdistiller, mdistiller/engine/cfg.py: DKD.ALPHA 1, DKD.BETA 8,
# DKD.T 4, DKD.CE_WEIGHT 1).
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(distill_loss=dict(_delete_=True, type='DKDLoss', alpha=1.0, beta=8.0,
                               temperature=4.0))
