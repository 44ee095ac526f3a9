# VRM: ResNet50 -> MobileNetV2 on CIFAR-100, the KD benchmark's 240-epoch recipe.
_base_ = [
    '../_base_/models/cifar100/mobilenetv2.py',
    '../_base_/datasets/cifar100_bs64_virtual.py',
    '../_base_/schedules/cifar100_bs64_240e.py',
    '../_base_/default_runtime.py',
    '../_base_/losses/vrm.py',
]

# The trained teacher: a released CIFAR-100 teacher converted with
# tools/convert_cifar_teacher.py (docs/classification.md), or a checkpoint of
# ../teachers/resnet50_cifar100.py.
teacher_ckpt = 'checkpoints/resnet50_cifar100.pth'

model = dict(
    _delete_=True,
    type='ImageClassifierDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../_base_/models/cifar100/resnet50.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.vrm_loss,
    virtual_view=_base_.virtual_view)

# MobileNetV2 students start at 0.01 (HobbitLong/RepDistiller train_student.py; mdistiller
# configs/cifar100/dkd/res50_mv2.yaml and vgg13_mv2.yaml SOLVER.LR).
optim_wrapper = dict(optimizer=dict(lr=0.01))
