# The standard ImageNet schedule of the KD benchmark's ImageNet pairs, mmpretrain's
# _base_/schedules/imagenet_bs256.py: SGD lr 0.1 for batch 256 (8 GPUs x 32), momentum 0.9,
# weight decay 1e-4, 100 epochs, x0.1 after epochs 30, 60 and 90.
# megvii-research/mdistiller configs/imagenet/*/kd.yaml and dkd.yaml run the same schedule at
# twice the batch and twice the rate (512, 0.2).
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs256.py']
