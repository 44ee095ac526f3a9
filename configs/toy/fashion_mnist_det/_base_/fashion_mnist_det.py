# Fashion-MNIST detection canvases (10 classes, 128x128, 2-5 real item images each):
#   tools/make_fashion_mnist_detection.py --out data/fashion_mnist_det
_base_ = '../../_base_/toy_coco_detection.py'

data_root = 'data/fashion_mnist_det/'
metainfo = dict(classes=('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                         'Shirt', 'Sneaker', 'Bag', 'Ankle boot'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
