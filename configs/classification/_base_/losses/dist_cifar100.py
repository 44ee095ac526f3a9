# DIST on CIFAR-100 at its authors' setting: `kd: dist_t4` (temperature 4, inter- and
# intra-class weights beta = gamma = 1), cross-entropy weight 1, DIST weight 2
# (hunto/image_classification_sota, the classification code of hunto/DIST_KD:
# configs/strategies/distill/dist_cifar.yaml ori_loss_weight, kd_loss_weight, kd;
# lib/models/losses/kd_loss.py builds 'dist_t4' as DIST(beta=1, gamma=1, tau=4)).
dist_loss = dict(_delete_=True, type='DISTLoss', inter_weight=1.0, intra_weight=1.0,
                 temperature=4.0, loss_weight=2.0)
dist_ce_weight = 1.0
