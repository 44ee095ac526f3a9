"""The demo pipeline, the hooks it relies on, and the command-line tools."""
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TOY_STUDENT, TOY_VRM, toy_config

from vrm_det.apis import DemoSettings, prepare_train_config, run_demo
from vrm_det.apis.demo import read_scalars
from vrm_det.visualization import plot_distiller_relations

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope='module')
def demo(toy_data, tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('demo')
    settings = DemoSettings(work_dir=str(work_dir), data_root=str(toy_data), teacher_iters=3,
                            student_iters=3)
    return settings, run_demo(settings)


def test_demo_evaluates_every_model_and_writes_the_report(demo):
    settings, results = demo
    assert list(results) == ['teacher', 'student alone', 'student + KD', 'student + VRM']
    for metrics in results.values():
        assert 0 <= metrics['AP'] <= 1 and 0 <= metrics['AP50'] <= 1
        assert metrics['AP50'] >= metrics['AP75']
    report = open(osp.join(settings.work_dir, 'report.md')).read()
    for name in ('ap.png', 'loss_curves.png', 'kept_fraction.png', 'joint_entropy.png',
                 'relations.png'):
        path = osp.join(settings.work_dir, name)
        assert osp.getsize(path) > 5000 and name in report
    assert f"| student + VRM | {100 * results['student + VRM']['AP']:.1f} |" in report


def test_stats_hook_records_kept_fraction_every_iteration(demo):
    settings, _ = demo
    series = read_scalars(osp.join(settings.work_dir, 'vrm'))
    kept = series['distill/kept_fraction']
    assert [step for step, _ in kept] == [1, 2, 3]
    assert all(0.9 <= value <= 0.96 for _, value in kept)
    assert 'distill/vrm_sample_term' in series and 'distill/vrm_class_term' in series
    assert [step for step, _ in series['distill/distill_grad_norm']] == [1, 2, 3]
    assert 'distill/kept_fraction' not in read_scalars(osp.join(settings.work_dir, 'kd'))


def test_second_demo_run_reuses_the_teacher(demo, capsys):
    settings, first = demo
    again = run_demo(settings)
    assert again['teacher'] == first['teacher']
    assert 'reusing the teacher' in capsys.readouterr().out


def test_relation_plot_from_a_distiller_checkpoint(demo, toy_data, tmp_path):
    settings, _ = demo
    cfg = toy_config(TOY_VRM, toy_data, tmp_path,
                     teacher_ckpt=osp.join(settings.work_dir, 'teacher', 'iter_3.pth'))
    info = plot_distiller_relations(cfg, osp.join(settings.work_dir, 'vrm', 'iter_3.pth'),
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
