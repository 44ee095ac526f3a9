# VRM on the single-class toy dataset: the five-class toy VRM config with the
# class count and the data changed, as a user moving to a one-class dataset would.
_base_ = ['../vrm_faster-rcnn_r18-w32-w8_fpn_toy.py']

teacher_ckpt = 'work_dirs/faster-rcnn_r18-w32_fpn_toy-1cls/iter_600.pth'
model = dict(
    student=dict(roi_head=dict(bbox_head=dict(num_classes=1))),
    teacher='{{fileDirname}}/faster-rcnn_r18-w32_fpn_toy-1cls.py',
    teacher_ckpt=teacher_ckpt)
data_root = 'data/toy_coco_1cls/'
metainfo = dict(classes=('disc', ))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = test_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_evaluator = test_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
