# Toy teacher on the single-class toy dataset (discs only).
_base_ = ['../faster-rcnn_r18-w32_fpn_toy.py']

model = dict(roi_head=dict(bbox_head=dict(num_classes=1)))
# The single-class toy dataset: tools/make_toy_coco.py --out data/toy_coco_1cls --classes disc
data_root = 'data/toy_coco_1cls/'
metainfo = dict(classes=('disc', ))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
