# ResNet-18 trained alone on ImageNet-1k with cross-entropy: the control arm of its
# distillation configs, same data, schedule and network, no teacher.
_base_ = [
    '../_base_/models/in1k/resnet18.py',
    '../_base_/datasets/in1k_bs32.py',
    '../_base_/schedules/in1k_bs256_100e.py',
    '../_base_/default_runtime.py',
]
