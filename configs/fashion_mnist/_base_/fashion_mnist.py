# Fashion-MNIST through mmpretrain's own FashionMNIST dataset (the four IDX files
# in data/fashion_mnist; `vrm_det.datasets.prepare_fashion_mnist` puts them there
# from Debian's dataset-fashion-mnist package). 28 x 28 grey images are made
# 3-channel with mmpretrain's transforms so that RandAugment's colour operations
# and the 3-channel stems apply unchanged.
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
# Grey level mean and std of the 60,000 training images, measured here.
data_preprocessor = dict(num_classes=10, mean=[72.94] * 3, std=[90.02] * 3, to_rgb=False)

grey_to_3_channels = [
    dict(type='ToPIL', to_rgb=False),
    dict(type='torchvision/Grayscale', num_output_channels=3),
    dict(type='ToNumpy', to_bgr=False),
]
real_view = [
    *grey_to_3_channels,
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
]
train_pipeline = [*real_view, dict(type='PackInputs')]
test_pipeline = [*grey_to_3_channels, dict(type='PackInputs')]

# Students train on the first 19,200 training images (300 iterations of 64) and
# evaluates on all 10,000 test images.
train_dataloader = dict(
    batch_size=64, num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=False, download=False,
                 indices=19200, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=256, num_workers=0,
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=True, download=False,
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
