# DeiT-Tiny (mmpretrain's VisionTransformer, arch 'deit-tiny': 12 layers, 192 channels, 3 heads)
# on CIFAR-100 images at their native 32x32, cut into 4x4 patches: 8x8 = 64 tokens plus the
# class token. 32 px keeps CIFAR's resolution, as every other network of the benchmark sees it
# (no upsampling to 224, which would cost 3136/64 = 49 times the tokens); patch 4 is the patch
# size that keeps a useful sequence at that size (patch 16 would leave 4 tokens).
# Head and initialisation follow mmpretrain's configs/deit/deit-tiny_4xb256_in1k.py
# (class-token head, truncated-normal linear layers); its label smoothing and Mixup/CutMix
# are not used: the benchmark's students train with plain cross-entropy.
_base_ = ['./cifar100_preprocessor.py']

model = dict(
    type='ImageClassifier',
    data_preprocessor=_base_.cifar100_preprocessor,
    backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=4),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=100, in_channels=192,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=.02),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
    ])
