# wrn_16_2 trained alone on CIFAR-100 with cross-entropy: the control arm of its
# distillation configs, same data, schedule and network, no teacher.
_base_ = [
    '../_base_/models/cifar100/wrn_16_2.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_bs64_240e.py',
    '../_base_/default_runtime.py',
]
