"""Bad inputs, each as a user meets it: a clear error that names the fix, or a
defined and logged zero loss; never a lost checkpoint or work directory.

Configuration mistakes go through ``tools/train.py`` itself (its ``main``, in
this process); degenerate batches go through the distiller's loss."""
import hashlib
import runpy
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from conftest import TOY_STUDENT, TOY_TEACHER, TOY_VRM, toy_config
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from vrm_det.checkpoint import UntrustedCheckpointError
from vrm_det.registry import MMDET_MODELS

TRAIN_TOOL = Path(__file__).parents[1] / 'tools' / 'train.py'


@pytest.fixture(scope='module')
def vrm_config(toy_data, toy_teacher_ckpt, tmp_path_factory):
    """The toy VRM config on the toy data, one iteration, as a file."""
    directory = tmp_path_factory.mktemp('bad_inputs')
    cfg = toy_config(TOY_VRM, toy_data, directory / 'unused', max_iters=1,
                     teacher_ckpt=toy_teacher_ckpt)
    path = directory / 'vrm_toy.py'
    cfg.dump(str(path))
    return path


@pytest.fixture
def work_dir(tmp_path, toy_teacher_ckpt):
    """A work dir holding a checkpoint and last_checkpoint from an earlier run."""
    directory = tmp_path / 'work'
    directory.mkdir()
    (directory / 'iter_1.pth').write_bytes(Path(toy_teacher_ckpt).read_bytes())
    (directory / 'last_checkpoint').write_text(str(directory / 'iter_1.pth'))
    return directory


def fingerprint(directory: Path) -> dict:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in directory.iterdir() if path.is_file()}


def train_tool_refuses(config, work_dir, options, error, match):
    """Run tools/train.py; it must raise ``error`` matching ``match`` and leave
    the work dir's files as they were."""
    before = fingerprint(work_dir)
    argv = [str(TRAIN_TOOL), str(config), '--work-dir', str(work_dir)]
    if options:
        argv += ['--cfg-options', *options]
    with mock.patch.object(sys, 'argv', argv), pytest.raises(error, match=match):
        runpy.run_path(str(TRAIN_TOOL), run_name='__main__')
    after = fingerprint(work_dir)
    assert {name: after.get(name) for name in before} == before


# -- configuration mistakes, through tools/train.py -------------------------

def test_teacher_checkpoint_of_another_architecture(vrm_config, work_dir, tmp_path):
    init_default_scope('mmdet')
    student = MMDET_MODELS.build(Config.fromfile(str(TOY_STUDENT)).model)
    other = tmp_path / 'narrow_detector.pth'
    torch.save(dict(state_dict=student.state_dict()), other)
    train_tool_refuses(vrm_config, work_dir, [f'model.teacher_ckpt={other}'], ValueError,
                       r'does not match the teacher config.*Shape mismatches.*'
                       r'Check that the teacher config describes the network')


def test_distiller_checkpoint_given_as_teacher(vrm_config, work_dir, tmp_path,
                                               toy_teacher_ckpt):
    state = torch.load(toy_teacher_ckpt, weights_only=True)['state_dict']
    distiller_ckpt = tmp_path / 'distiller.pth'
    torch.save(dict(state_dict={f'student.{k}': v for k, v in state.items()}), distiller_ckpt)
    train_tool_refuses(vrm_config, work_dir, [f'model.teacher_ckpt={distiller_ckpt}'],
                       ValueError, r'is a distiller checkpoint.*tools/convert_to_student.py')


class Payload:
    """An object a checkpoint must not be allowed to unpickle."""


def test_untrusted_pickle_as_teacher(vrm_config, work_dir, tmp_path):
    untrusted = tmp_path / 'untrusted.pth'
    torch.save(dict(state_dict={}, payload=Payload()), untrusted)
    train_tool_refuses(vrm_config, work_dir, [f'model.teacher_ckpt={untrusted}'],
                       UntrustedCheckpointError,
                       r'outside the allow-list: .*Payload.*If you trust the file')


def test_missing_data_root(vrm_config, work_dir, tmp_path):
    missing = tmp_path / 'no_such_dataset'
    train_tool_refuses(vrm_config, work_dir,
                       [f'train_dataloader.dataset.data_root={missing}/'], FileNotFoundError,
                       r'train_dataloader: annotation file .*no_such_dataset.* does not exist'
                       r'.*--cfg-options train_dataloader.dataset.data_root=DIR/')


@pytest.mark.parametrize('option, match', [
    ('model.roi_vertice=foreground', r"model: TwoStageDistiller has no option 'roi_vertice'; "
                                     r"did you mean 'roi_vertices'\?"),
    ('model.distill_loss.alpah=2.0', r"model.distill_loss: VRMLoss has no option 'alpah'; "
                                     r"did you mean 'alpha'\?"),
    ('model.virtual_view.num_op=3', r"model.virtual_view: PhotometricRandAugment has no "
                                    r"option 'num_op'; did you mean 'num_ops'\?"),
])
def test_misspelled_option(vrm_config, work_dir, option, match):
    train_tool_refuses(vrm_config, work_dir, [option], TypeError, match)


def test_class_count_mismatch(vrm_config, work_dir, tmp_path):
    teacher_config = tmp_path / 'teacher_7_classes.py'
    teacher_config.write_text(f"_base_ = '{TOY_TEACHER}'\n"
                              'model = dict(roi_head=dict(bbox_head=dict(num_classes=7)))\n')
    train_tool_refuses(vrm_config, work_dir, [f'model.teacher={teacher_config}'], ValueError,
                       r'teacher predicts 7 classes and the student 5.*same num_classes')


def test_teacher_config_path_that_does_not_exist(vrm_config, work_dir, tmp_path):
    train_tool_refuses(vrm_config, work_dir, [f'model.teacher={tmp_path}/nope.py'],
                       FileNotFoundError,
                       r'teacher config file .*nope.py does not exist: set teacher to the path')


# -- degenerate batches, through the distiller's loss ------------------------

@pytest.fixture(scope='module')
def toy_batch(toy_data, tmp_path_factory, toy_teacher_ckpt):
    cfg = toy_config(TOY_VRM, toy_data, tmp_path_factory.mktemp('batch'),
                     teacher_ckpt=toy_teacher_ckpt)
    return next(iter(Runner.build_dataloader(cfg.train_dataloader)))


def build_distiller(teacher_ckpt, **overrides):
    init_default_scope('mmdet')
    model = Config.fromfile(str(TOY_VRM)).model
    model.update(teacher_ckpt=str(teacher_ckpt), distill_warmup_iters=0, **overrides)
    distiller = MMDET_MODELS.build(model)
    distiller.train()
    return distiller


def without_boxes(batch):
    samples = []
    for sample in batch['data_samples']:
        sample = sample.clone()
        sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4),
                                           labels=torch.zeros(0, dtype=torch.long))
        samples.append(sample)
    return dict(inputs=batch['inputs'], data_samples=samples)


def step(distiller, batch):
    torch.manual_seed(0)
    losses = distiller.loss(**distiller.data_preprocessor(batch, True))
    for key, value in losses.items():
        values = value if isinstance(value, list) else [value]
        assert all(torch.isfinite(v).all() for v in values), key
    return losses


def test_images_without_boxes(toy_teacher_ckpt, toy_batch):
    losses = step(build_distiller(toy_teacher_ckpt), without_boxes(toy_batch))
    # Every sampled RoI is background; the graph over them is still a graph.
    assert losses['distill_vertices'] > 2 and losses['loss_vrm_sample'] > 0


def test_all_background_rois(toy_teacher_ckpt, toy_batch):
    """Every vertex is background: the graph is still built over all of them,
    and the loss equals the spec computed independently (numpy) on the
    logits the distiller passed, at the config's floor."""
    from test_unit_edges import np_vrm

    distiller = build_distiller(toy_teacher_ckpt)
    captured = {}
    original = distiller.distill

    def capture(**inputs):
        captured.update({k: v.detach().clone() for k, v in inputs.items()})
        return original(**inputs)

    distiller.distill = capture
    losses = step(distiller, without_boxes(toy_batch))
    background = distiller.student.roi_head.bbox_head.num_classes
    assert (captured['labels'] == background).all() and len(captured['labels']) > 2
    assert losses.get('pruned_foreground_share', 0) == 0  # no foreground endpoint
    loss = distiller.distill_loss
    want = np_vrm(captured['student_logits'], captured['student_virtual_logits'],
                  captured['teacher_logits'], captured['teacher_virtual_logits'],
                  loss.options['keep_percentile'], loss.options['edge_floor'],
                  loss.options['short_edges'])
    assert losses['vrm_sample_term'].item() == pytest.approx(want['sample'], rel=1e-4)
    assert losses['vrm_class_term'].item() == pytest.approx(want['class'], rel=1e-4)


def test_zero_proposals_after_nms(toy_teacher_ckpt, toy_batch):
    """No proposal survives (every box below min_bbox_size): the sampler's
    ground-truth boxes are the only RoIs; without boxes there are none."""
    distiller = build_distiller(toy_teacher_ckpt)
    distiller.student.train_cfg.rpn_proposal.min_bbox_size = 10 ** 6
    num_boxes = sum(len(s.gt_instances) for s in toy_batch['data_samples'])
    assert step(distiller, toy_batch)['distill_vertices'] == num_boxes
    losses = step(distiller, without_boxes(toy_batch))
    assert losses['distill_vertices'] == 0 and losses['distill_edgeless_steps'] == 1
    assert losses['loss_vrm_sample'] == 0 and losses['loss_vrm_class'] == 0


@pytest.mark.parametrize('num_boxes', [0, 1])
def test_foreground_vertices_fewer_than_two(toy_teacher_ckpt, toy_batch, num_boxes):
    distiller = build_distiller(toy_teacher_ckpt, roi_vertices='foreground')
    batch = without_boxes(toy_batch)
    if num_boxes:
        batch['data_samples'][0].gt_instances = toy_batch['data_samples'][0].gt_instances[:1]
        # Only the ground-truth box itself: no proposal may overlap it.
        distiller.student.train_cfg.rpn_proposal.min_bbox_size = 10 ** 6
    with mock.patch.object(distiller, '_count_edgeless',
                           wraps=distiller._count_edgeless) as count:
        losses = step(distiller, batch)
    assert losses['distill_vertices'] == num_boxes
    assert losses['loss_vrm_sample'] == 0 and losses['loss_vrm_class'] == 0
    assert losses['distill_edgeless_steps'] == 1 and count.call_count == 1
    assert losses['loss_cls'] > 0  # the detector's own losses still train
