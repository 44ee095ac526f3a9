# The single-class toy dataset (discs only):
#   tools/make_toy_coco.py --out data/toy_coco_1cls --classes disc
_base_ = './toy_coco_detection.py'

data_root = 'data/toy_coco_1cls/'
metainfo = dict(classes=('disc', ))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
