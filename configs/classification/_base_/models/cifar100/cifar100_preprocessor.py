# CIFAR-100 normalisation of the KD benchmark: mean (0.5071, 0.4867, 0.4408) and std
# (0.2675, 0.2565, 0.2761) on [0, 1] pixels (HobbitLong/RepDistiller dataset/cifar100.py,
# megvii-research/mdistiller mdistiller/dataset/cifar100.py), here times 255 because
# mmpretrain normalises [0, 255] pixels. mmpretrain's CIFAR100 dataset yields RGB arrays.
# Named apart from `data_preprocessor` and set in each model: a teacher and a student
# keep their own normalisation wherever their model configs are used.
cifar100_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=100,
    mean=[129.3105, 124.1085, 112.404],
    std=[68.2125, 65.4075, 70.4055],
    to_rgb=False)
