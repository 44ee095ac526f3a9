# Toy teacher (width 32) on the Fashion-MNIST detection canvases.
_base_ = [
    '../_base_/toy_faster-rcnn.py', './_base_/fashion_mnist_det.py',
    '../_base_/toy_schedule.py'
]
custom_imports = dict(imports=['vrm_det'], allow_failed_imports=False)
model = dict(roi_head=dict(bbox_head=dict(num_classes=10)))
