# VRM: resnet32x4 -> resnet8x4 on CIFAR-100, the KD benchmark's 240-epoch recipe.
_base_ = [
    '../_base_/models/cifar100/resnet8x4.py',
    '../_base_/datasets/cifar100_bs64_virtual.py',
    '../_base_/schedules/cifar100_bs64_240e.py',
    '../_base_/default_runtime.py',
    '../_base_/losses/vrm.py',
]

# The trained teacher: a released CIFAR-100 teacher converted with
# tools/convert_cifar_teacher.py (docs/classification.md), or a checkpoint of
# ../teachers/resnet32x4_cifar100.py.
teacher_ckpt = 'checkpoints/resnet32x4_cifar100.pth'

model = dict(
    _delete_=True,
    type='ImageClassifierDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../_base_/models/cifar100/resnet32x4.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.vrm_loss,
    virtual_view=_base_.virtual_view)
