"""The demo pipeline, the hooks it relies on, and the command-line tools."""
import json
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TOY_STUDENT, TOY_VRM, toy_config
from mmengine.config import Config

from vrm_det.apis import DemoSettings, prepare_train_config, read_scalars, run_demo
from vrm_det.apis.demo import ALONE, CONTROL, CONTROL_VRM, KD, VRM
from vrm_det.apis.runs import run_config
from vrm_det.apis.seed_comparison import gain_over, parse_arm, summary_table, train_arm
from vrm_det.checkpoint import load_local_checkpoint
from vrm_det.visualization import plot_distiller_relations

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope='module')
def demo(toy_data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('demo')
    settings = DemoSettings(work_dir=str(work_dir), data_root=str(toy_data), teacher_iters=3,
                            student_iters=3, seeds=(0, 1), jobs=2)
    return settings, run_demo(settings)


def _run_dir(settings, arm, seed=0):
    return next(r['run_dir'] for r in settings_records(settings)
                if r['arm'] == arm and r['seed'] == seed)


def settings_records(settings):
    with open(osp.join(settings.work_dir, 'results.json')) as f:
        return json.load(f)


def test_demo_trains_every_arm_with_every_seed_and_reports_the_spread(demo):
    settings, result = demo
    records = result['records']
    arms = [ALONE, CONTROL, VRM, CONTROL_VRM]
    assert [(r['arm'], r['seed']) for r in records] == [(a, s) for s in (0, 1) for a in arms]
    assert records == settings_records(settings)
    for record in records:
        assert 0 <= record['AP'] <= 1 and record['AP50'] >= record['AP75']
        assert osp.isfile(record['checkpoint'])
    report = open(result['report']).read()
    for arm in arms:
        aps = [100 * r['AP'] for r in records if r['arm'] == arm]
        # mean ± sample std, computed here independently of the report's code
        assert f'| {arm} | {np.mean(aps):.1f} ± {np.std(aps, ddof=1):.1f} |' in report
        if arm in (VRM, CONTROL_VRM):  # the unit-edge share column, from the logged steps
            steps = {graph: [v for r in records if r['arm'] == arm for _, v in read_scalars(
                r['run_dir'])[f'distill/unit_edge_share_{graph}']] for graph in ('sample', 'class')}
            cells = ' / '.join(f'{np.mean(v):.3f} ({np.min(v):.3f})' for v in steps.values())
            assert f'| {cells} |' in report.split(f'| {arm} |')[1].split('\n')[0]
    for name in ('ap.png', 'loss_curves.png', 'kept_fraction.png', 'joint_entropy.png',
                 'relations.png', 'unit_edge_share.png'):
        assert osp.getsize(osp.join(settings.work_dir, name)) > 5000 and name in report


def test_demo_runs_each_arm_with_its_own_config(demo):
    """The control sees the virtual view with its own detection loss and no
    teacher; KD (an --all-baselines arm) and VRM distil; the student alone is
    a plain detector."""
    settings, _ = demo
    arms = DemoSettings(**{**settings.__dict__, 'all_baselines': True}).arms()
    assert KD in arms and KD not in settings.arms()
    models = {arm: Config.fromfile(path).model for arm, path in arms.items()}
    assert models[ALONE].type == 'FasterRCNN'
    control, kd, vrm_model = models[CONTROL], models[KD], models[VRM]
    assert control.virtual_det_loss and control.distill_loss.loss_weight == 0
    assert control.virtual_view == vrm_model.virtual_view
    assert not kd.get('virtual_det_loss', False) and kd.distill_loss.type == 'KDLoss'
    assert not vrm_model.get('virtual_det_loss', False) and vrm_model.distill_loss.type == 'VRMLoss'
    assert control.student == kd.student == vrm_model.student == models[ALONE]
    # Nested: control + VRM is the control with VRM's loss, and VRM with the control's losses.
    control_vrm = models[CONTROL_VRM]
    assert control_vrm == dict(vrm_model, virtual_det_loss=True)
    assert dict(control_vrm, distill_loss=None) == dict(control, distill_loss=None)
    vrm = read_scalars(_run_dir(settings, VRM))
    control_series = read_scalars(_run_dir(settings, CONTROL))
    kept = vrm['distill/kept_fraction']
    assert [step for step, _ in kept] == [1, 2, 3]
    assert all(0.9 <= value <= 0.96 for _, value in kept)
    assert [step for step, _ in vrm['distill/distill_grad_norm']] == [1, 2, 3]
    assert 'distill/kept_fraction' not in control_series


def test_seed_changes_the_run_and_fixes_it(demo, toy_data, tmp_path):
    """Seeds 0 and 1 train different students; seed 0 trained again (here in
    this process, in the demo in a worker) gives the same AP."""
    settings, result = demo
    vrm_runs = {r['seed']: r for r in result['records'] if r['arm'] == VRM}
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, os.cpu_count() // settings.jobs))  # as the demo's workers
    try:
        again = train_arm(VRM, settings.vrm_config, 0, str(toy_data), str(tmp_path / 'again'),
                          osp.join(settings.work_dir, 'teacher', 'iter_3.pth'), 3)
    finally:
        torch.set_num_threads(threads)
    assert again['AP'] == vrm_runs[0]['AP']
    first = load_local_checkpoint(vrm_runs[0]['checkpoint'])['state_dict']
    second = load_local_checkpoint(vrm_runs[1]['checkpoint'])['state_dict']
    repeated = load_local_checkpoint(again['checkpoint'])['state_dict']
    assert all(torch.equal(first[k], repeated[k]) for k in first)
    assert not all(torch.equal(first[k], second[k]) for k in first)


def test_gain_over_the_reference_and_the_seed_spread():
    arm, alone = {0: 36.0, 1: 37.0, 2: 35.0}, {0: 32.0, 1: 33.0, 2: 37.0}
    gain = gain_over(arm, alone)
    differences = np.array([4.0, 4.0, -2.0])
    spread = max(np.std([36, 37, 35], ddof=1), np.std([32, 33, 37], ddof=1))
    assert gain['gain'] == pytest.approx(differences.mean())
    assert gain['gain_std'] == pytest.approx(differences.std(ddof=1))
    assert gain['spread'] == pytest.approx(spread) and gain['exceeds_spread'] is False
    steady = gain_over({0: 36.0, 1: 37.0, 2: 35.5}, {0: 32.0, 1: 33.0, 2: 32.5})
    assert steady['gain'] == pytest.approx(3.667, abs=1e-3) and steady['exceeds_spread'] is True
    assert gain_over({0: 36.0}, {0: 32.0})['exceeds_spread'] is None
    records = [dict(arm=a, seed=s, AP=v / 100) for a, values in (('alone', alone), ('x', arm))
               for s, v in values.items()]
    table = summary_table(records)
    assert '| x | 36.0 ± 1.0 | 36.0, 37.0, 35.0 | +2.0 ± 3.5 | no |' in table


def test_arm_options_are_merged_into_the_config_and_misspellings_refused(toy_data, tmp_path):
    config, options = parse_arm(
        f'{TOY_VRM} model.distill_loss.edge_floor=0.05 "model.roi_vertices=balanced" '
        'model.virtual_det_loss=True')
    assert options == {'model.distill_loss.edge_floor': 0.05,
                       'model.roi_vertices': 'balanced', 'model.virtual_det_loss': True}
    cfg = run_config(config, 0, str(toy_data), str(tmp_path), 7, 'x', options=options)
    assert cfg.model.distill_loss.edge_floor == 0.05 and cfg.model.roi_vertices == 'balanced'
    assert cfg.train_cfg.max_iters == 7  # the run's own settings still hold
    assert cfg.model.virtual_det_loss is True  # an option the file leaves at its default
    with pytest.raises(KeyError, match="has no 'model.distill_los'"):
        run_config(config, 0, str(toy_data), str(tmp_path), 7, 'x',
                   options={'model.distill_los.edge_floor': 0.05})


def test_second_demo_run_reuses_the_teacher(demo, capsys):
    settings, first = demo
    again = run_demo(DemoSettings(**{**settings.__dict__, 'seeds': (0,), 'jobs': 1}))
    assert again['teacher'] == first['teacher']
    assert 'reusing the teacher' in capsys.readouterr().out
    assert [(r['arm'], r['seed']) for r in again['records']] == [
        (arm, 0) for arm in (ALONE, CONTROL, VRM, CONTROL_VRM)]


def test_relation_plot_from_a_distiller_checkpoint(demo, toy_data, tmp_path):
    settings, _ = demo
    cfg = toy_config(TOY_VRM, toy_data, tmp_path,
                     teacher_ckpt=osp.join(settings.work_dir, 'teacher', 'iter_3.pth'))
    info = plot_distiller_relations(cfg, osp.join(_run_dir(settings, VRM), 'iter_3.pth'),
                                    str(tmp_path / 'rel.png'), max_vertices=16)
    assert info['vertices_drawn'] == 16 and 0.9 <= info['kept_fraction'] <= 0.96
    assert osp.getsize(tmp_path / 'rel.png') > 5000


def test_train_and_test_tools(toy_data, tmp_path):
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={toy_data}/',
               f'val_dataloader.dataset.data_root={toy_data}/',
               f'test_dataloader.dataset.data_root={toy_data}/',
               f'val_evaluator.ann_file={toy_data}/annotations/instances_val.json',
               f'test_evaluator.ann_file={toy_data}/annotations/instances_val.json',
               'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2']
    work = tmp_path / 'work'
    train = subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py'), str(TOY_STUDENT),
                            '--work-dir', str(work), *options], capture_output=True, text=True,
                           env=env, timeout=300)
    assert train.returncode == 0, train.stderr[-3000:]
    ckpt = work / 'iter_2.pth'
    assert ckpt.is_file()
    test = subprocess.run([sys.executable, str(ROOT / 'tools' / 'test.py'), str(TOY_STUDENT),
                           str(ckpt), '--work-dir', str(tmp_path / 'test'), *options],
                          capture_output=True, text=True, env=env, timeout=300)
    assert test.returncode == 0, test.stderr[-3000:]
    assert 'coco/bbox_mAP' in test.stdout + test.stderr


def test_train_config_options(tmp_path):
    cfg = prepare_train_config(str(TOY_STUDENT), work_dir=str(tmp_path), amp=True,
                               resume='auto', cfg_options={'train_cfg.max_iters': 7})
    assert cfg.optim_wrapper.type == 'MixedPrecisionOptimWrapper' and cfg.resume is True
    assert cfg.train_cfg.max_iters == 7 and cfg.work_dir == str(tmp_path)
    default = prepare_train_config(str(TOY_STUDENT))
    assert default.work_dir == './work_dirs/faster-rcnn_r18-w8_fpn_toy'
    with pytest.raises(FileNotFoundError, match='--resume checkpoint'):
        prepare_train_config(str(TOY_STUDENT), resume=str(tmp_path / 'none.pth'))
    with pytest.raises(FileNotFoundError, match='config file'):
        prepare_train_config(str(tmp_path / 'missing.py'))
