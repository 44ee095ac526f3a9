"""The smoke config builds through the registry, trains a step and predicts."""
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope

from vrm_det.datasets import synthetic_detection_batch
from vrm_det.registry import MMDET_MODELS

CONFIG = Path(__file__).parents[1] / 'configs' / 'smoke' / 'faster-rcnn_r18_fpn_smoke.py'


def test_smoke_config_trains_one_step_and_predicts():
    start = time.perf_counter()
    cfg = Config.fromfile(str(CONFIG))
    init_default_scope('mmdet')
    model = MMDET_MODELS.build(cfg.model)
    assert model.backbone.depth == 18 and model.roi_head.bbox_head.num_classes == 3

    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    log_vars = model.train_step(synthetic_detection_batch(num_boxes=2), optim_wrapper)
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'):
        assert torch.isfinite(log_vars[key]), key
    assert not torch.equal(before, model.roi_head.bbox_head.fc_cls.weight)

    model.eval()
    with torch.no_grad():
        results = model.val_step(synthetic_detection_batch(num_boxes=2, seed=1))
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores)
        assert ((pred.labels >= 0) & (pred.labels < 3)).all()
    assert time.perf_counter() - start < 60
