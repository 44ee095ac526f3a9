# DKD: ResNet-34 -> ResNet-18 on ImageNet-1k, the VRM config with the loss swapped, at DKD's
# setting for this pair (megvii-research/mdistiller configs/imagenet/r34_r18/dkd.yaml: CE_WEIGHT 1,
# BETA 0.5, T 1, WARMUP 1; ALPHA 1 from mdistiller/engine/cfg.py). mdistiller scales DKD by
# min(epoch / WARMUP, 1) with epochs counted from 1, so WARMUP 1 is full weight from the first
# iteration: no warm-up here.
_base_ = ['../vrm/vrm_resnet34-resnet18_in1k.py']
model = dict(
    distill_loss=dict(_delete_=True, type='DKDLoss', alpha=1.0, beta=0.5, temperature=1.0,
                      loss_weight=1.0))
