# VRM: ResNet-50 -> MobileNetV1 on ImageNet-1k, the standard 100-epoch recipe.
_base_ = [
    '../_base_/models/in1k/mobilenetv1.py',
    '../_base_/datasets/in1k_bs32_virtual.py',
    '../_base_/schedules/in1k_bs256_100e.py',
    '../_base_/default_runtime.py',
    '../_base_/losses/vrm.py',
]

# The teacher: torchvision's ImageNet weights converted with
# tools/convert_torchvision_teacher.py (docs/classification.md, "Teacher checkpoints").
teacher_ckpt = 'checkpoints/resnet50_imagenet.pth'

model = dict(
    _delete_=True,
    type='ImageClassifierDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/../_base_/models/in1k/resnet50.py',
    teacher_ckpt=teacher_ckpt,
    distill_loss=_base_.vrm_loss,
    virtual_view=_base_.virtual_view)
