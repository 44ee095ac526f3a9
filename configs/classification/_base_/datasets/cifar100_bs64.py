# CIFAR-100 as the KD benchmark trains on it: batch 64, RandomCrop 32 with padding 4 and a
# horizontal flip (HobbitLong/RepDistiller train_student.py --batch_size and
# dataset/cifar100.py; megvii-research/mdistiller configs/cifar100/*.yaml SOLVER.BATCH_SIZE
# and mdistiller/dataset/cifar100.py). Normalisation is in each model's data_preprocessor.
# mmpretrain's CIFAR100 reads the python pickles of data/cifar100/cifar-100-python/
# (train, test, meta), the layout of mmpretrain's _base_/datasets/cifar100_bs16.py.
dataset_type = 'CIFAR100'
data_root = 'data/cifar100'

train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    # The benchmark evaluates at batch 64 too (mdistiller DATASET.TEST.BATCH_SIZE);
    # the batch size does not change the accuracy of a network in eval mode.
    batch_size=64,
    num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
