# DIST on ImageNet at its authors' setting: `kd: 'dist'` (temperature 1, beta = gamma = 1),
# cross-entropy weight 1, DIST weight 2 (hunto/image_classification_sota, the classification
# code of hunto/DIST_KD: configs/strategies/distill/resnet_dist.yaml, the config its README
# gives for ResNet-34 -> ResNet-18 and ResNet-50 -> MobileNetV1; lib/models/losses/kd_loss.py
# builds 'dist' as DIST(beta=1, gamma=1, tau=1)).
dist_loss = dict(_delete_=True, type='DISTLoss', inter_weight=1.0, intra_weight=1.0,
                 temperature=1.0, loss_weight=2.0)
dist_ce_weight = 1.0
