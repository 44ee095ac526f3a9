# KD on ImageNet at its benchmark setting: temperature 1, cross-entropy weight 0.5, KD weight
# 0.5 (megvii-research/mdistiller configs/imagenet/r34_r18/kd.yaml and r50_mv1/kd.yaml,
# KD.TEMPERATURE and KD.LOSS).
kd_loss = dict(_delete_=True, type='KDLoss', temperature=1.0, loss_weight=0.5)
kd_ce_weight = 0.5
