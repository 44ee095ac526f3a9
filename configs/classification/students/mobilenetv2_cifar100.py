# MobileNetV2 trained alone on CIFAR-100 with cross-entropy: the control arm of its
# distillation configs, same data, schedule and network, no teacher.
_base_ = [
    '../_base_/models/cifar100/mobilenetv2.py',
    '../_base_/datasets/cifar100_bs64.py',
    '../_base_/schedules/cifar100_bs64_240e.py',
    '../_base_/default_runtime.py',
]

# MobileNetV2 students start at 0.01 (HobbitLong/RepDistiller train_student.py; mdistiller
# configs/cifar100/dkd/res50_mv2.yaml and vgg13_mv2.yaml SOLVER.LR).
optim_wrapper = dict(optimizer=dict(lr=0.01))
