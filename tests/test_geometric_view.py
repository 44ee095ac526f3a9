"""The geometric virtual view for detection: mmdet's two-branch pipeline, RoIs
projected into the virtual image, against independent computations.

- the crop of the virtual image at a projected box is the real crop moved by
  the transform (translate, rotate, shear made by mmdet's own transforms);
- the real-to-virtual map is composed correctly when the real view was
  resized and flipped, and padding stays padding;
- the four logit matrices equal separate forward passes at the projected RoIs;
- RoIs pushed out of the virtual image leave both graphs, and are counted;
- the virtual detection losses take the projected RoIs and ground truth.
"""
import os
import os.path as osp
import subprocess
import sys

import mmdet
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONFIGS, toy_config
from mmcv.transforms import Compose
from mmdet.registry import MODELS
from mmdet.structures.bbox import HorizontalBoxes
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from test_detection_distiller import build_distiller
from test_virtual_path import roi_outputs
from torchvision.ops import roi_align

from vrm_det.models.virtual_views import project_rois, real_to_virtual_homographies

GEOMETRIC = CONFIGS / 'toy' / 'geometric'
GEOMETRIC_VRM = GEOMETRIC / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py'
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'homography_matrix')
PACK = dict(type='PackDetInputs', meta_keys=META_KEYS)
# Each transform at a fixed magnitude and sign (level 10 of [min_mag, max_mag]; mmdet
# rounds a magnitude to one decimal).
TRANSFORMS = {
    'translate': dict(type='TranslateX', prob=1.0, level=10, min_mag=0.2, max_mag=0.2,
                      reversal_prob=1.0),
    'rotate': dict(type='Rotate', prob=1.0, level=10, min_mag=12.0, max_mag=12.0,
                   reversal_prob=1.0),
    'shear': dict(type='ShearX', prob=1.0, level=10, min_mag=15.0, max_mag=15.0,
                  reversal_prob=1.0),
}


def smooth_image(height: int, width: int) -> np.ndarray:
    """A smooth HxWx3 uint8 image: bilinear interpolation is near exact on it."""
    y, x = np.mgrid[0:height, 0:width] + 0.5
    channels = [128 + 70 * np.sin(2 * np.pi * x / 61 + c) * np.cos(2 * np.pi * y / 47 - c)
                + 25 * np.sin(2 * np.pi * (x + 2 * y) / 89) for c in range(3)]
    return np.clip(np.stack(channels, -1), 0, 255).round().astype(np.uint8)


def two_views(image, boxes, virtual_transform, flip=False, scale=None):
    """The image through mmdet's transforms: resize, flip, then the two branches."""
    init_default_scope('mmdet')
    # mmdet's Resize records the homography every detection pipeline starts from.
    scale = scale or (image.shape[1], image.shape[0])
    steps = [dict(type='Resize', scale=scale, keep_ratio=True)]
    steps += [dict(type='RandomFlip', prob=1.0 if flip else 0.0),
              dict(type='MultiBranch', branch_field=['real', 'virtual'], real=[PACK],
                   virtual=[virtual_transform, PACK])]
    results = dict(img=image, img_shape=image.shape[:2], ori_shape=image.shape[:2], img_id=7,
                   img_path='generated.png',
                   gt_bboxes=HorizontalBoxes(np.asarray(boxes, dtype=np.float32)),
                   gt_bboxes_labels=np.zeros(len(boxes), dtype=np.int64),
                   gt_ignore_flags=np.zeros(len(boxes), dtype=bool))
    out = Compose(steps)(results)
    return out['inputs'], out['data_samples']


def sample_at(image: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``image`` (C, H, W) at continuous (x, y) ``points``
    (..., 2), pixel centres at half-integers (the RoIAlign convention)."""
    height, width = image.shape[-2:]
    grid = torch.stack([2 * points[..., 0] / width - 1, 2 * points[..., 1] / height - 1], -1)
    return F.grid_sample(image[None], grid[None].to(image.dtype), mode='bilinear',
                         align_corners=False)[0]


def bin_centres(box: torch.Tensor, size: int) -> torch.Tensor:
    """The (size, size, 2) centres of a RoIAlign's bins with one sample per bin."""
    x1, y1, x2, y2 = box.double()
    xs = x1 + (torch.arange(size, dtype=torch.float64) + 0.5) * (x2 - x1) / size
    ys = y1 + (torch.arange(size, dtype=torch.float64) + 0.5) * (y2 - y1) / size
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([gx, gy], -1)


@pytest.mark.parametrize('name', sorted(TRANSFORMS))
def test_crop_at_the_projected_box_is_the_transformed_real_crop(name):
    """RoIAlign of the virtual image at a projected box against the real image
    sampled where the transform's inverse sends each bin centre; at the
    unprojected box the crops disagree."""
    image = smooth_image(120, 160)
    boxes = torch.tensor([[50., 40., 90., 75.], [70., 55., 105., 80.], [60., 45., 80., 70.]])
    inputs, samples = two_views(image, boxes.numpy(), TRANSFORMS[name])
    real, virtual = inputs['real'].double(), inputs['virtual'].double()
    homography = real_to_virtual_homographies([samples['real']], [samples['virtual']])
    rois = torch.cat([boxes.new_zeros(len(boxes), 1), boxes], 1)
    projected = project_rois(rois, homography, [samples['virtual'].img_shape], min_inside=0.5)
    assert projected.kept.all()

    size = 7
    crops = roi_align(virtual[None], projected.rois.double(), size, spatial_scale=1.0,
                      sampling_ratio=1, aligned=True)
    unprojected = roi_align(virtual[None], rois.double(), size, spatial_scale=1.0,
                            sampling_ratio=1, aligned=True)
    inverse = torch.linalg.inv(homography[0])
    errors, misses = [], []
    for crop, wrong, box in zip(crops, unprojected, projected.rois[:, 1:]):
        points = bin_centres(box, size).reshape(-1, 2)
        back = torch.cat([points, points.new_ones(len(points), 1)], 1) @ inverse.T
        want = sample_at(real, (back[:, :2] / back[:, 2:]).reshape(size, size, 2))
        errors.append((crop - want).abs().mean())
        misses.append((wrong - want).abs().mean())
    # Interpolation on a uint8 image and mmcv's warp centre: a few grey levels.
    assert max(errors) < 3.0, (name, errors)
    assert min(misses) > 4 * max(errors), (name, errors, misses)


def test_real_to_virtual_map_composes_a_resized_flipped_real_view():
    """Both branches' homographies include the resize and the flip; their
    composition is the virtual transform alone, and a projected box projects
    back onto itself."""
    image = smooth_image(100, 150)
    inputs, samples = two_views(image, [[10., 10., 40., 30.]], TRANSFORMS['translate'],
                                flip=True, scale=(300, 200))
    real, virtual = samples['real'], samples['virtual']
    assert real.flip and real.img_shape == (200, 300)
    assert not np.allclose(real.homography_matrix, np.eye(3))
    homography = real_to_virtual_homographies([real], [virtual])[0]
    shift = int(300 * 0.2)  # TranslateX moves by int(width * magnitude) pixels
    torch.testing.assert_close(homography, torch.tensor(
        [[1., 0., shift], [0., 1., 0.], [0., 0., 1.]], dtype=torch.float64), atol=1e-5, rtol=0)
    boxes = torch.tensor([[0., 3., 12.5, 40.], [100., 150., 170.25, 199.]])
    rois = torch.cat([boxes.new_zeros(2, 1), boxes], 1)
    there = project_rois(rois, homography[None], [(10 ** 4, 10 ** 4)], 0.5).rois
    back = project_rois(there, torch.linalg.inv(homography)[None], [(10 ** 4, 10 ** 4)], 0.5).rois
    torch.testing.assert_close(back, rois, atol=1e-4, rtol=0)


def test_padding_stays_padding_in_both_views(toy_teacher_ckpt):
    """Two images of different sizes: the batch pads both views alike, and the
    virtual view's transform never reaches the padding."""
    distiller = build_distiller(GEOMETRIC_VRM, toy_teacher_ckpt)
    batch = {'inputs': {'real': [], 'virtual': []}, 'data_samples': {'real': [], 'virtual': []}}
    for height, width in ((96, 128), (128, 80)):
        inputs, samples = two_views(smooth_image(height, width), [[5., 5., 40., 40.]],
                                    TRANSFORMS['rotate'])
        for branch in ('real', 'virtual'):
            batch['inputs'][branch].append(inputs[branch])
            batch['data_samples'][branch].append(samples[branch])
    data = distiller.data_preprocessor(batch, True)
    real, virtual = data['inputs']['real'], data['inputs']['virtual']
    assert real.shape == virtual.shape == (2, 3, 128, 128)
    pad_value = distiller.data_preprocessor.pad_value
    for index, sample in enumerate(data['data_samples']['virtual']):
        height, width = sample.img_shape
        outside = torch.ones(real.shape[-2:], dtype=torch.bool)
        outside[:height, :width] = False
        assert outside.any()
        for view in (real, virtual):
            assert (view[index][:, outside] == pad_value).all()
        assert not torch.equal(real[index, :, :height, :width],
                               virtual[index, :, :height, :width])


def geometric_batch(distiller, toy_data, tmp_path, toy_teacher_ckpt):
    cfg = toy_config(GEOMETRIC_VRM, toy_data, tmp_path, teacher_ckpt=toy_teacher_ckpt)
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    return distiller.data_preprocessor(batch, True)


def recorded_loss(distiller, data):
    """One loss computation, recording the RoIs the student's extractor pools
    (real rows first, then the virtual rows) and the distillation inputs."""
    seen = {}

    def on_rois(module, args, output):
        seen.setdefault('rois', args[1].detach().clone())

    def on_loss(module, args, kwargs, output):
        seen['distill'] = {k: v.detach() for k, v in kwargs.items() if v is not None}

    handles = [distiller.student.roi_head.bbox_roi_extractor.register_forward_hook(on_rois),
               distiller.distill_loss.register_forward_hook(on_loss, with_kwargs=True)]
    try:
        losses = distiller.loss(data['inputs'], data['data_samples'])
    finally:
        for handle in handles:
            handle.remove()
    seen['real_rois'] = seen['rois'][:len(seen['rois']) // 2]
    return losses, seen


def projected_by_hand(rois, data, min_inside=0.5):
    """Projection written out with numpy: H_virtual inv(H_real) on the four
    corners, the box around them, clipped; kept when half its area is inside."""
    rows, kept = [], []
    for roi in rois.double().numpy():
        i = int(roi[0])
        real = data['data_samples']['real'][i].homography_matrix
        virtual = data['data_samples']['virtual'][i].homography_matrix
        matrix = np.asarray(virtual, np.float64) @ np.linalg.inv(np.asarray(real, np.float64))
        x1, y1, x2, y2 = roi[1:]
        corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]]) @ matrix.T
        xs, ys = corners[:, 0] / corners[:, 2], corners[:, 1] / corners[:, 2]
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        height, width = data['data_samples']['virtual'][i].img_shape
        clipped = np.clip(box, 0, [width, height, width, height])
        area = (box[2] - box[0]) * (box[3] - box[1])
        inside = max(clipped[2] - clipped[0], 0) * max(clipped[3] - clipped[1], 0)
        rows.append([i, *clipped])
        kept.append(inside >= min_inside * area)
    return torch.tensor(rows, dtype=torch.float32), torch.tensor(kept)


@pytest.fixture
def geometric_run(toy_data, toy_teacher_ckpt, tmp_path):
    torch.manual_seed(0)
    distiller = build_distiller(GEOMETRIC_VRM, toy_teacher_ckpt, virtual_det_loss=True)
    distiller.train()
    data = geometric_batch(distiller, toy_data, tmp_path, toy_teacher_ckpt)
    losses, seen = recorded_loss(distiller, data)
    return distiller, data, losses, seen


def test_four_logit_matrices_equal_separate_forward_passes_at_projected_rois(geometric_run):
    distiller, data, losses, seen = geometric_run
    inputs, virtual = data['inputs']['real'], data['inputs']['virtual']
    rois = seen['real_rois']
    virtual_rois, kept = projected_by_hand(rois, data)
    assert not torch.allclose(virtual_rois, rois), 'the batch moved no RoI'
    with torch.no_grad():
        want = {
            'student_logits': roi_outputs(distiller.student, inputs, rois)[0][kept],
            'student_virtual_logits':
                roi_outputs(distiller.student, virtual, virtual_rois)[0][kept],
            'teacher_logits': roi_outputs(distiller.teacher, inputs, rois)[0][kept],
            'teacher_virtual_logits':
                roi_outputs(distiller.teacher, virtual, virtual_rois)[0][kept],
        }
        unprojected = roi_outputs(distiller.teacher, virtual, rois)[0][kept]
    got = seen['distill']
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=1e-4, atol=1e-4, msg=key)
    # Scoring the virtual image at the unprojected RoIs would give other logits.
    assert (unprojected - want['teacher_virtual_logits']).abs().max() > 1e-2
    torch.testing.assert_close(losses['projected_dropped_share'],
                               torch.tensor(1 - kept.float().mean().item()))


def test_virtual_detection_losses_take_projected_rois_and_ground_truth(geometric_run):
    """The virtual losses equal mmdet's bbox-head loss on the virtual outputs at
    the projected RoIs, with regression targets from the projected ground truth."""
    distiller, data, losses, seen = geometric_run
    virtual = data['inputs']['virtual']
    rois = seen['real_rois']
    virtual_rois, kept = projected_by_hand(rois, data)
    student = distiller.student
    with torch.no_grad():
        cls_score, bbox_pred = roi_outputs(student, virtual, virtual_rois)
    num_classes = student.roi_head.bbox_head.num_classes
    # Recompute the targets from scratch: the assignment of the real RoIs to the
    # ground truth (IoU on the real view) gives each positive its box.
    assigner = student.roi_head.bbox_assigner
    targets_cls, targets_box, positive = [], [], []
    for i, sample in enumerate(data['data_samples']['real']):
        image_rows = (rois[:, 0] == i).nonzero(as_tuple=True)[0]
        assigned = assigner.assign(InstanceData(priors=rois[image_rows, 1:]),
                                   sample.gt_instances)
        gt_boxes = sample.gt_instances.bboxes
        for gt in assigned.gt_inds.tolist():
            if gt > 0:
                gt_box = torch.cat([torch.tensor([[i]], dtype=torch.float32),
                                    gt_boxes[gt - 1:gt]], 1)
                projected_gt, _ = projected_by_hand(gt_box, data)
                targets_cls.append(int(sample.gt_instances.labels[gt - 1]))
                targets_box.append(projected_gt[0, 1:])
                positive.append(True)
            else:
                targets_cls.append(num_classes)
                targets_box.append(torch.zeros(4))
                positive.append(False)
    targets_cls, positive = torch.tensor(targets_cls), torch.tensor(positive)
    targets_box = torch.stack(targets_box)
    nonempty = (targets_box[:, 2] > targets_box[:, 0]) & (targets_box[:, 3] > targets_box[:, 1])
    used = kept & (~positive | nonempty)
    want_cls = F.cross_entropy(cls_score[used], targets_cls[used])
    torch.testing.assert_close(losses['loss_cls_virtual'].detach(), want_cls,
                               rtol=1e-4, atol=1e-5)
    # Regression: smooth-L1/L1 on deltas of the projected ground truth, encoded
    # by the head's own coder, for the positives used.
    head = student.roi_head.bbox_head
    pos = used & positive
    deltas = head.bbox_coder.encode(virtual_rois[pos, 1:], targets_box[pos])
    predicted = bbox_pred[pos].view(pos.sum(), -1, 4)[torch.arange(int(pos.sum())),
                                                      targets_cls[pos]]
    want_box = head.loss_bbox(predicted, deltas, avg_factor=used.sum().item())
    torch.testing.assert_close(losses['loss_bbox_virtual'].detach(), want_box,
                               rtol=1e-4, atol=1e-5)


def test_rois_pushed_out_of_the_image_leave_both_graphs(toy_data, toy_teacher_ckpt, tmp_path):
    """The virtual view's homography is replaced by a shift of half the width:
    exactly the RoIs whose projection is mostly outside leave the graphs."""
    torch.manual_seed(0)
    distiller = build_distiller(GEOMETRIC_VRM, toy_teacher_ckpt)
    distiller.train()
    data = geometric_batch(distiller, toy_data, tmp_path, toy_teacher_ckpt)
    for real, virtual in zip(data['data_samples']['real'], data['data_samples']['virtual']):
        shift = np.array([[1, 0, real.img_shape[1] / 2], [0, 1, 0], [0, 0, 1]])
        virtual.set_metainfo(dict(homography_matrix=shift @ np.asarray(
            real.get('homography_matrix', np.eye(3)), np.float64)))
    losses, seen = recorded_loss(distiller, data)
    rois = seen['real_rois']
    _, kept = projected_by_hand(rois, data)
    assert 0.2 < kept.float().mean() < 0.8, 'the shift should push out a share of the RoIs'
    assert len(seen['distill']['student_logits']) == int(kept.sum())
    with torch.no_grad():
        want = roi_outputs(distiller.teacher, data['inputs']['real'], rois)[0][kept]
    torch.testing.assert_close(seen['distill']['teacher_logits'], want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(losses['projected_dropped_share'],
                               torch.tensor(1 - kept.float().mean().item()))


def test_a_batch_projected_wholly_outside_has_a_zero_loss(toy_data, toy_teacher_ckpt, tmp_path):
    distiller = build_distiller(GEOMETRIC_VRM, toy_teacher_ckpt, virtual_det_loss=True)
    distiller.train()
    data = geometric_batch(distiller, toy_data, tmp_path, toy_teacher_ckpt)
    for virtual in data['data_samples']['virtual']:
        virtual.set_metainfo(dict(homography_matrix=np.array(
            [[1, 0, 10 ** 4], [0, 1, 0], [0, 0, 1]], np.float64)))
    for real in data['data_samples']['real']:
        real.set_metainfo(dict(homography_matrix=np.eye(3)))
    losses = distiller.loss(data['inputs'], data['data_samples'])
    assert losses['projected_dropped_share'] == 1
    assert losses['distill_vertices'] == 0 and losses['distill_edgeless_steps'] == 1
    assert {'loss_cls_virtual', 'loss_bbox_virtual'} <= set(losses)  # logged every step
    for key, value in losses.items():
        for part in value if isinstance(value, list) else [value]:
            assert torch.isfinite(part).all(), key
        if key.startswith('loss_vrm') or key.endswith('_virtual'):
            assert value == 0, key


@pytest.mark.parametrize('view, error, match', [
    (dict(type='PipelineView'), TypeError, 'DetectionPipelineView'),
    (dict(type='DetectionPipelineView', min_inside=0), ValueError, 'min_inside')])
def test_pipeline_views_need_the_detection_marker(toy_teacher_ckpt, view, error, match):
    cfg = Config.fromfile(str(GEOMETRIC_VRM))
    cfg.model.teacher_ckpt = str(toy_teacher_ckpt)
    cfg.model.virtual_view = view
    init_default_scope('mmdet')
    with pytest.raises(error, match=match):
        MODELS.build(cfg.model)


def test_mmdet_own_train_tool_runs_the_geometric_toy_config(toy_data, toy_teacher_ckpt,
                                                            tmp_path):
    tool = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
    cfg = toy_config(GEOMETRIC / 'control-vrm_faster-rcnn_r18-w32-w8_fpn_toy-geometric.py',
                     toy_data, tmp_path / 'work', teacher_ckpt=toy_teacher_ckpt)
    config_file = tmp_path / 'geometric_toy.py'
    cfg.dump(str(config_file))
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    done = subprocess.run([sys.executable, tool, str(config_file)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    log = done.stdout + done.stderr
    for key in ('loss_cls_virtual', 'loss_vrm_sample', 'projected_dropped_share'):
        assert key in log, key


def test_coco_geometric_configs_build_their_two_view_pipeline():
    for path in sorted((CONFIGS / 'vrm' / 'geometric').glob('*.py')):
        cfg = Config.fromfile(str(path))
        assert cfg.model.virtual_view.type == 'DetectionPipelineView', path
        last = cfg.train_dataloader.dataset.pipeline[-1]
        assert last['type'] == 'MultiBranch' and last['branch_field'] == ['real', 'virtual']
        assert 'homography_matrix' in last['real'][-1]['meta_keys']
        assert any(t['type'] == 'Rotate' for [t] in last['virtual'][0]['aug_space'])


def test_demo_geometric_view_gives_control_and_vrm_the_same_view(toy_data, toy_teacher_ckpt,
                                                                tmp_path):
    """--view geometric: the control and both VRM arms see the pipeline's view,
    and the report's relation figure can be drawn from such a run."""
    from vrm_det.apis import DemoSettings
    from vrm_det.visualization import plot_distiller_relations

    arms = DemoSettings(view='geometric').arms()
    views = {arm: Config.fromfile(path).model.get('virtual_view') for arm, path in arms.items()}
    assert views.pop('student alone') is None
    assert all(view.type == 'DetectionPipelineView' for view in views.values()), views
    with pytest.raises(ValueError, match='view'):
        DemoSettings(view='rotated')

    cfg = toy_config(GEOMETRIC_VRM, toy_data, tmp_path, teacher_ckpt=toy_teacher_ckpt)
    distiller = build_distiller(GEOMETRIC_VRM, toy_teacher_ckpt)
    student_ckpt = tmp_path / 'student.pth'
    torch.save({'state_dict': distiller.student.state_dict()}, student_ckpt)
    graph = plot_distiller_relations(cfg, str(student_ckpt), str(tmp_path / 'relations.png'))
    assert (tmp_path / 'relations.png').stat().st_size > 0 and graph['vertices_drawn'] > 1


def test_every_operation_of_the_virtual_view_changes_an_image():
    """No operation of the geometric view's RandAugment space is an identity
    at its configured magnitude (mmdet's colour operations are at level 5)."""
    init_default_scope('mmdet')
    from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
    space = Config.fromfile(str(CONFIGS / '_base_' / 'geometric_virtual_view.py'))
    # Low contrast, so that autocontrast and equalize have something to do, and
    # texture, so that sharpness has.
    texture = np.random.default_rng(0).normal(0, 8, (64, 80, 3))
    image = (smooth_image(64, 80) * 0.4 + 60 + texture).clip(0, 255).round().astype(np.uint8)
    for [entry] in space.geometric_virtual_view_transform.aug_space:
        transform = MMDET_TRANSFORMS.build(entry)
        for _ in range(4):  # every random choice of sign or factor
            out = transform(dict(img=image.copy(), img_shape=image.shape[:2]))['img']
            change = np.abs(out.astype(np.float64) - image).mean()
            assert change > 0.5, (entry, change)
