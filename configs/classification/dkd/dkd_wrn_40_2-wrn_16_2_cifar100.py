# DKD: WRN-40-2 -> WRN-16-2 on CIFAR-100, the VRM config with the loss swapped, at DKD's CIFAR-100
# setting: CE_WEIGHT 1, ALPHA 1, T 4, WARMUP 20 epochs (megvii-research/mdistiller
# mdistiller/engine/cfg.py) and this pair's BETA: 6, from
# configs/cifar100/dkd/wrn40_2_wrn_16_2.yaml.
_base_ = ['../vrm/vrm_wrn_40_2-wrn_16_2_cifar100.py']
model = dict(
    distill_loss=dict(_delete_=True, type='DKDLoss', alpha=1.0, beta=6.0, temperature=4.0,
                      loss_weight=1.0),
    # mdistiller scales DKD by min(epoch / 20, 1), epochs counted from 1; here the factor
    # rises per iteration and reaches 1 after 20 epochs of 782 iterations
    # (ceil(50000 / 64), the last batch of each epoch kept): 20 x 782 = 15640.
    distill_warmup_iters=15640)
