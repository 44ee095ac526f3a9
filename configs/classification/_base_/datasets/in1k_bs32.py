# ImageNet-1k as mmpretrain's _base_/datasets/imagenet_bs32.py reads it (data/imagenet with
# train/, val/ and meta/{train,val}.txt): RandomResizedCrop 224 and a flip for training,
# resize to 256 and centre crop 224 for evaluation, 32 images per GPU (256 on 8 GPUs).
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs32.py']

# Normalisation lives in each model's data_preprocessor (models/in1k/in1k_preprocessor.py),
# so that a teacher and a student keep their own; mmpretrain's top-level one is unset.
data_preprocessor = None
