# The resnet32x4 teacher on CIFAR-100, trained with cross-entropy at the benchmark's teacher
# recipe (HobbitLong/RepDistiller train_teacher.py: lr 0.05 for every network, 240 epochs).
# Its checkpoint is the teacher_ckpt of the distillation configs.
_base_ = [
    '../_base_/models/cifar100/resnet32x4.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_bs64_240e.py',
    '../_base_/default_runtime.py',
]
