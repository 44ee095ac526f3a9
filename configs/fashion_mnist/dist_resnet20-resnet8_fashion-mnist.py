# DIST: the VRM config with the loss swapped, at its authors' published setting
# (hunto/DIST_KD, segmentation/losses/dist_kd.py: beta 1, gamma 1, weight 1;
# the paper's tau 1 for ImageNet).
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(distill_loss=dict(_delete_=True, type='DISTLoss', inter_weight=1.0,
                               intra_weight=1.0, temperature=1.0, loss_weight=1.0))
