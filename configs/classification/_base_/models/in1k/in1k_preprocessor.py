# ImageNet normalisation of torchvision's ResNets (the teachers' weights) and of mmpretrain's
# _base_/datasets/imagenet_bs32.py; images are loaded BGR and converted to RGB.
# Named apart from `data_preprocessor` and set in each model: a teacher and a student
# keep their own normalisation wherever their model configs are used.
in1k_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
