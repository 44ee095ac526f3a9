# VRM on the Fashion-MNIST detection canvases: the five-class toy VRM config with
# the class count and the data changed.
_base_ = ['../vrm_faster-rcnn_r18-w32-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/faster-rcnn_r18-w32_fpn_fmnist-det/iter_600.pth'
model = dict(
    student=dict(roi_head=dict(bbox_head=dict(num_classes=10))),
    teacher='{{fileDirname}}/faster-rcnn_r18-w32_fpn_fmnist-det.py',
    teacher_ckpt=teacher_ckpt)
data_root = 'data/fashion_mnist_det/'
metainfo = dict(classes=('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
