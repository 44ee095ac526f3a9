"""Resuming gives the model an uninterrupted run gives, and a run killed while
saving a checkpoint loses nothing that was saved before."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TOY_STUDENT, TOY_VRM, toy_config
from test_distributed import WORLD_SIZE, free_port

from vrm_det.apis import build_runner, prepare_train_config
from vrm_det.checkpoint import is_complete_checkpoint, load_local_checkpoint, student_state_dict

ROOT = Path(__file__).parents[1]


def train(config_file, work_dir, resume=None):
    cfg = prepare_train_config(str(config_file), work_dir=str(work_dir), resume=resume)
    build_runner(cfg).train()


def assert_same_tensors(a, b, where):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        for index, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f'{where}[{index}]')
    else:
        assert a == b, where


def four_iteration_vrm_config(toy_data, toy_teacher_ckpt, tmp_path):
    """The toy VRM config, 4 iterations, a checkpoint every 2, as a file."""
    cfg = toy_config(TOY_VRM, toy_data, tmp_path, max_iters=4, teacher_ckpt=toy_teacher_ckpt)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=-1)
    cfg.model.distill_warmup_iters = 0
    config_file = tmp_path / 'vrm_toy.py'
    cfg.dump(str(config_file))
    return config_file


def test_resumed_vrm_run_ends_bit_exact_with_an_uninterrupted_one(toy_data, toy_teacher_ckpt,
                                                                   tmp_path):
    config_file = four_iteration_vrm_config(toy_data, toy_teacher_ckpt, tmp_path)

    train(config_file, tmp_path / 'straight')
    # Iteration 2's checkpoint is what a run interrupted after it leaves.
    os.makedirs(tmp_path / 'resumed')
    shutil.copy(tmp_path / 'straight' / 'iter_2.pth', tmp_path / 'resumed' / 'iter_2.pth')
    (tmp_path / 'resumed' / 'last_checkpoint').write_text(str(tmp_path / 'resumed' / 'iter_2.pth'))
    train(config_file, tmp_path / 'resumed', resume='auto')

    straight = load_local_checkpoint(str(tmp_path / 'straight' / 'iter_4.pth'))
    resumed = load_local_checkpoint(str(tmp_path / 'resumed' / 'iter_4.pth'))
    assert_same_tensors(resumed['state_dict'], straight['state_dict'], 'state_dict')
    assert_same_tensors(resumed['optimizer'], straight['optimizer'], 'optimizer')
    assert_same_tensors(resumed['meta']['random_states'], straight['meta']['random_states'],
                        'random_states')
    # The model did change between the two checkpoints: the comparison has teeth.
    at_two = load_local_checkpoint(str(tmp_path / 'straight' / 'iter_2.pth'))['state_dict']
    assert not all(torch.equal(at_two[k], v) for k, v in straight['state_dict'].items())


def _resume_in_two_processes(rank, port, config_file, out_dir):
    """Train 4 iterations straight, then resume a copy of iteration 2's
    checkpoint, in the same process group; save what this rank ends with."""
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    out = Path(out_dir)
    ends = {}
    try:
        for run, resume in (('straight', None), ('resumed', 'auto')):
            if resume is not None:
                if rank == 0:
                    os.makedirs(out / run)
                    shutil.copy(out / 'straight' / 'iter_2.pth', out / run / 'iter_2.pth')
                    (out / run / 'last_checkpoint').write_text(str(out / run / 'iter_2.pth'))
                dist.barrier()
            cfg = prepare_train_config(str(config_file), work_dir=str(out / run), resume=resume,
                                       launcher='pytorch')
            cfg.experiment_name = run  # the same on every rank, another per run
            runner = build_runner(cfg)
            runner.train()
            model = getattr(runner.model, 'module', runner.model)
            ends[run] = dict(torch_rng=torch.get_rng_state(),
                             student=student_state_dict(model.state_dict()))
        torch.save(ends, out / f'rank{rank}.pt')
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_process_resume_continues_every_ranks_random_streams(toy_data, toy_teacher_ckpt,
                                                                 tmp_path):
    """Only rank 0 writes a checkpoint, yet each rank resumes its own streams:
    rank 1's virtual views and RoI samples are drawn from rank 1's state."""
    config_file = four_iteration_vrm_config(toy_data, toy_teacher_ckpt, tmp_path)
    mp.spawn(_resume_in_two_processes, args=(free_port(), str(config_file), str(tmp_path)),
             nprocs=WORLD_SIZE)

    ends = [torch.load(tmp_path / f'rank{rank}.pt', weights_only=True)
            for rank in range(WORLD_SIZE)]
    for rank, end in enumerate(ends):
        assert torch.equal(end['resumed']['torch_rng'], end['straight']['torch_rng']), rank
        assert_same_tensors(end['resumed']['student'], end['straight']['student'],
                            f'rank {rank} student')
    # The ranks drew from streams of their own: restoring rank 0's everywhere would fail.
    assert not torch.equal(ends[0]['straight']['torch_rng'], ends[1]['straight']['torch_rng'])
    # The checkpoint (loaded as untrusted input) holds one entry per rank.
    straight = load_local_checkpoint(str(tmp_path / 'straight' / 'iter_4.pth'))
    resumed = load_local_checkpoint(str(tmp_path / 'resumed' / 'iter_4.pth'))
    assert len(straight['meta']['random_states']) == WORLD_SIZE
    assert_same_tensors(resumed['meta']['random_states'], straight['meta']['random_states'],
                        'random_states')
    rank0, rank1 = straight['meta']['random_states']
    assert not torch.equal(rank0['torch'], rank1['torch'])


# Runs tools/train.py and kills the process with SIGKILL when half the bytes of
# iteration 2's checkpoint are written, whatever file name they are written to.
KILLED_WRITER = textwrap.dedent('''
    import builtins, os, runpy, signal, sys

    real_open = builtins.open

    class HalfWrittenThenKilled:
        def __init__(self, file):
            self.file = file
        def write(self, data):
            self.file.write(data[:len(data) // 2])
            self.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        def __getattr__(self, name):
            return getattr(self.file, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

    def open_killing_on_second_checkpoint(file, mode='r', *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if 'w' in mode and 'iter_2.pth' in os.path.basename(str(file)):
            return HalfWrittenThenKilled(handle)
        return handle

    builtins.open = open_killing_on_second_checkpoint
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
''')


@pytest.fixture(scope='module')
def killed_run(toy_data, tmp_path_factory):
    """A student run killed while writing its second checkpoint (keeping one)."""
    work_dir = tmp_path_factory.mktemp('killed') / 'work'
    overrides = {'train_dataloader.dataset.data_root': f'{toy_data}/',
                 'val_dataloader.dataset.data_root': f'{toy_data}/',
                 'test_dataloader.dataset.data_root': f'{toy_data}/',
                 'val_evaluator.ann_file': f'{toy_data}/annotations/instances_val.json',
                 'test_evaluator.ann_file': f'{toy_data}/annotations/instances_val.json',
                 'train_cfg.max_iters': 3, 'train_cfg.val_interval': 100,
                 'default_hooks.checkpoint.interval': 1,
                 'default_hooks.checkpoint.max_keep_ckpts': 1, 'train_dataloader.batch_size': 2}
    options = ['--cfg-options'] + [f'{key}={value}' for key, value in overrides.items()]
    env = dict(os.environ, PYTHONWARNINGS='ignore')
    done = subprocess.run([sys.executable, '-c', KILLED_WRITER, str(ROOT / 'tools' / 'train.py'),
                           str(TOY_STUDENT), '--work-dir', str(work_dir), *options],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == -9, done.stderr[-3000:]  # killed, mid-write
    return work_dir, overrides


def test_a_kill_mid_save_leaves_the_previous_checkpoint_loadable(killed_run):
    work_dir = killed_run[0]
    # No truncated file under a checkpoint's name; the one before survives.
    checkpoints = sorted(p.name for p in work_dir.glob('*.pth'))
    assert checkpoints == ['iter_1.pth']
    assert load_local_checkpoint(str(work_dir / 'iter_1.pth'))['meta']['iter'] == 1
    assert (work_dir / 'last_checkpoint').read_text().strip() == str(work_dir / 'iter_1.pth')


def test_auto_resume_after_the_kill_continues_from_the_last_complete_checkpoint(killed_run):
    work_dir, overrides = killed_run
    cfg = prepare_train_config(str(TOY_STUDENT), work_dir=str(work_dir), resume='auto',
                               cfg_options=overrides)
    assert cfg.load_from == str(work_dir / 'iter_1.pth')
    runner = build_runner(cfg)
    runner.train()
    assert runner.iter == 3
    assert is_complete_checkpoint(str(work_dir / 'iter_3.pth'))


def test_auto_resume_skips_a_truncated_last_checkpoint(tmp_path):
    """``last_checkpoint`` can name a file that never fully reached the disk
    (a power cut after the rename, a copy of the work dir cut short)."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    complete = work_dir / 'iter_1.pth'
    torch.save(dict(state_dict=dict(weight=torch.randn(1000)), meta=dict(iter=1)), complete)
    truncated = work_dir / 'iter_2.pth'
    truncated.write_bytes(complete.read_bytes()[:complete.stat().st_size // 2])
    (work_dir / 'last_checkpoint').write_text(str(truncated))
    cfg = prepare_train_config(str(TOY_STUDENT), work_dir=str(work_dir), resume='auto')
    assert cfg.load_from == str(complete)
    with pytest.raises(ValueError, match='is incomplete .*earlier checkpoint'):
        prepare_train_config(str(TOY_STUDENT), work_dir=str(work_dir), resume=str(truncated))
    complete.write_bytes(b'')
    with pytest.raises(FileNotFoundError, match='no checkpoint .* is complete.*Remove'):
        prepare_train_config(str(TOY_STUDENT), work_dir=str(work_dir), resume='auto')

