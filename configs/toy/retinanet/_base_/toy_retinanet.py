# A narrow RetinaNet (ResNet-18 layout, FPN) for 128x128 toy images.
# base_channels sets the width; the teacher and student configs choose it.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

model = dict(
    # Trained from scratch: batch-norm statistics must update (norm_eval=False).
    backbone=dict(depth=18, base_channels=32, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=64),
    # The toy's objects are 14 to 50 pixels: anchors from 16 pixels (stride 8)
    # instead of COCO's 32; strides, ratios and scales per octave as mmdet's.
    # Group norm in the head's towers: at this width, the four plain convs of
    # mmdet's head (initialised with std 0.01) shrink their input about 4x
    # each, and from scratch the regression branch did not learn (its loss
    # stayed at its initial value for 600 iterations). mmdet's ATSS and FCOS
    # heads use group norm the same way.
    bbox_head=dict(num_classes=5, in_channels=64, feat_channels=64,
                   norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
                   anchor_generator=dict(octave_base_scale=2)),
    test_cfg=dict(score_thr=0.01))
