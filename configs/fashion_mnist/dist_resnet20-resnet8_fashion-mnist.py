# DIST: the VRM config with the loss swapped, at its authors' CIFAR-100 setting
# (hunto/image_classification_sota, the classification code DIST_KD points to:
# configs/strategies/distill/dist_cifar.yaml, kd 'dist_t4' with loss weight 2;
# lib/models/losses/kd_loss.py: beta = gamma = 1, tau 4).
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(distill_loss=dict(_delete_=True, type='DISTLoss', inter_weight=1.0,
                               intra_weight=1.0, temperature=4.0, loss_weight=2.0))
