"""The smoke config builds through the registry, trains a step and predicts."""
import time
from pathlib import Path

import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

from vrm_det.registry import MMDET_MODELS

CONFIG = Path(__file__).parents[1] / 'configs' / 'smoke' / 'faster-rcnn_r18_fpn_smoke.py'


def generated_batch(size=128, seed=0):
    """Two images with two coloured rectangles each, and their boxes."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(2):
        image = torch.randint(0, 60, (3, size, size), generator=g, dtype=torch.uint8)
        boxes, labels = [], []
        for label in range(2):
            x0, y0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
            w, h = torch.randint(20, size // 2, (2,), generator=g).tolist()
            image[:, y0:y0 + h, x0:x0 + w] = torch.tensor([200, 80 * label, 50])[:, None, None]
            boxes.append([x0, y0, x0 + w, y0 + h])
            labels.append(label)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), pad_shape=(size, size),
                                             batch_input_shape=(size, size)))
        sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                           labels=torch.tensor(labels))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_smoke_config_trains_one_step_and_predicts():
    start = time.perf_counter()
    cfg = Config.fromfile(str(CONFIG))
    init_default_scope('mmdet')
    model = MMDET_MODELS.build(cfg.model)
    assert model.backbone.depth == 18 and model.roi_head.bbox_head.num_classes == 3

    model.train()
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    log_vars = model.train_step(generated_batch(), optim_wrapper)
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox'):
        assert torch.isfinite(log_vars[key]), key
    assert not torch.equal(before, model.roi_head.bbox_head.fc_cls.weight)

    model.eval()
    with torch.no_grad():
        results = model.val_step(generated_batch(seed=1))
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.bboxes) == len(pred.scores)
        assert ((pred.labels >= 0) & (pred.labels < 3)).all()
    assert time.perf_counter() - start < 60
