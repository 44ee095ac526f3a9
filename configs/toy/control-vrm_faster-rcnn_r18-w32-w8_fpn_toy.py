# Control + VRM: the augmentation control (the student's own detection losses on
# the real and the virtual view) with VRM on top. Against the control arm it
# differs in the teacher's relation loss only, so the comparison isolates what
# the relations add beyond the augmentation.
_base_ = ['./vrm_faster-rcnn_r18-w32-w8_fpn_toy.py']

model = dict(virtual_det_loss=True)
