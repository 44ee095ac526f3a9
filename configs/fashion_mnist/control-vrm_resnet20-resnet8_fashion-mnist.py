# Control + VRM: the augmentation control (the student's cross entropy on the
# real and the virtual view) with VRM on top; against the control it differs in
# the teacher's relation loss only.
_base_ = ['./vrm_resnet20-resnet8_fashion-mnist.py']

model = dict(virtual_cls_loss=True)
