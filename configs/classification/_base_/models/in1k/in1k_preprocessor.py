# ImageNet normalisation of torchvision's ResNets (the teachers' weights) and of mmpretrain's
# _base_/datasets/imagenet_bs32.py; images are loaded BGR and converted to RGB.
# Named apart from `data_preprocessor`: a top-level `data_preprocessor` is merged by
# mmengine's Runner into the model config, which a distiller does not take.
in1k_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=1000,
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)
