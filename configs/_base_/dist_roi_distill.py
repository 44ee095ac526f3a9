# DIST on RoI logits at its authors' dense-prediction setting: hunto/DIST_KD,
# segmentation/losses/dist_kd.py (the DIST module: beta 1, gamma 1, softmax with
# no temperature, loss_weight 1). The authors' detection code is not released;
# their README lists COCO results without a config.
dist_loss = dict(_delete_=True, type='DISTLoss', inter_weight=1.0, intra_weight=1.0,
                 temperature=1.0, loss_weight=1.0)
