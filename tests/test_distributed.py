"""Multi-process training on CPU (gloo): tools/dist_train.sh end to end, and
one relation graph across processes (``gather_vertices``) against one process
holding every vertex."""
import importlib.util
import os
import os.path as osp
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TOY_VRM, toy_config
from mmengine.config import Config
from mmengine.registry import init_default_scope

from vrm_det.checkpoint import load_local_checkpoint, student_state_dict
from vrm_det.registry import MMDET_MODELS

ROOT = Path(__file__).parents[1]
WORLD_SIZE = 2
ROWS_PER_RANK = 7
NUM_CLASSES = 6  # the toy detector's 5 classes and background


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def build_vrm_distiller(teacher_ckpt, **overrides):
    init_default_scope('mmdet')
    model = Config.fromfile(str(TOY_VRM)).model
    model.update(teacher_ckpt=str(teacher_ckpt), distill_warmup_iters=0, **overrides)
    return MMDET_MODELS.build(model)


def graph_inputs():
    """The logits of all WORLD_SIZE * ROWS_PER_RANK vertices, the same in every process."""
    generator = torch.Generator().manual_seed(0)
    rows = WORLD_SIZE * ROWS_PER_RANK
    logits = {name: 3 * torch.randn(rows, NUM_CLASSES, generator=generator)
              for name in ('student_logits', 'teacher_logits', 'student_virtual_logits',
                           'teacher_virtual_logits')}
    labels = torch.randint(NUM_CLASSES, (rows,), generator=generator)
    return logits, labels


def distill_and_backward(distiller, logits, labels):
    leaves = {name: value.clone().requires_grad_('student' in name)
              for name, value in logits.items()}
    losses = distiller.distill(**leaves, labels=labels)
    total = sum(value for key, value in losses.items() if 'loss' in key)
    total.backward()
    return dict(loss=total.detach(), kept_fraction=losses['kept_fraction'],
                vertices=losses['distill_vertices'],
                grad_real=leaves['student_logits'].grad,
                grad_virtual=leaves['student_virtual_logits'].grad)


def _gather_worker(rank, port, teacher_ckpt, out_dir, gather_vertices):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD_SIZE)
    try:
        from vrm_det.engine import DistillerDataParallel
        distiller = build_vrm_distiller(teacher_ckpt, gather_vertices=gather_vertices)
        wrapped = DistillerDataParallel(distiller, device_ids=None)
        teacher = distiller.teacher
        own = slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)
        logits, labels = graph_inputs()
        result = distill_and_backward(distiller, {k: v[own] for k, v in logits.items()},
                                      labels[own])
        synchronised = {id(p) for p in wrapped.parameters()}
        result.update(
            teacher_synchronised=any(id(p) in synchronised for p in teacher.parameters()),
            teacher_state={k: v.clone() for k, v in teacher.state_dict().items()})
        torch.save(result, osp.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


# True shards the VRM graph (tests/test_sharded_gather.py tests it further).
@pytest.mark.parametrize('gather_vertices', [True, 'replicated'])
def test_gathered_graph_equals_one_process_holding_every_vertex(toy_teacher_ckpt, tmp_path,
                                                                gather_vertices):
    mp.spawn(_gather_worker, args=(free_port(), str(toy_teacher_ckpt), str(tmp_path),
                                   gather_vertices), nprocs=WORLD_SIZE)
    logits, labels = graph_inputs()
    single = distill_and_backward(build_vrm_distiller(toy_teacher_ckpt), logits, labels)
    saved_teacher = torch.load(toy_teacher_ckpt, weights_only=True)['state_dict']
    for rank in range(WORLD_SIZE):
        ranked = torch.load(tmp_path / f'rank{rank}.pt', weights_only=True)
        assert ranked['vertices'] == WORLD_SIZE * ROWS_PER_RANK
        torch.testing.assert_close(ranked['loss'], single['loss'], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ranked['kept_fraction'], single['kept_fraction'])
        # DDP averages gradients over the processes: what this rank's rows
        # effectively receive is its gradient divided by the world size.
        own = slice(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK)
        for key in ('grad_real', 'grad_virtual'):
            torch.testing.assert_close(ranked[key] / WORLD_SIZE, single[key][own],
                                       rtol=1e-5, atol=1e-5)
        # Every rank loads the teacher itself; DDP neither syncs nor owns it.
        assert not ranked['teacher_synchronised']
        for key, value in ranked['teacher_state'].items():
            assert torch.equal(value, saved_teacher[key]), key


def test_dist_train_script_trains_toy_vrm_on_two_cpu_processes(toy_data, toy_teacher_ckpt,
                                                               tmp_path):
    """As a new user runs it: no activated venv, no GPU, gathered graph on."""
    work_dir = tmp_path / 'work'
    cfg = toy_config(TOY_VRM, toy_data, work_dir, max_iters=2, teacher_ckpt=toy_teacher_ckpt)
    cfg.model.gather_vertices = True
    cfg.train_cfg.val_interval = 100  # no validation: the test is about training
    config_file = tmp_path / 'vrm_toy.py'
    cfg.dump(str(config_file))
    env = dict(HOME=os.environ.get('HOME', '/tmp'), PATH='/usr/bin:/bin', PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    if osp.abspath(sys.executable) != str(ROOT / '.venv' / 'bin' / 'python'):
        # An environment other than the README's .venv (CI makes its own): name it,
        # as the script's PYTHON variable allows.
        env['PYTHON'] = sys.executable
    done = subprocess.run([str(ROOT / 'tools' / 'dist_train.sh'), str(config_file),
                           str(WORLD_SIZE)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=str(tmp_path))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "dist_cfg: {'backend': 'gloo'}" in output and 'Distributed training: True' in output
    assert osp.isfile(work_dir / 'iter_2.pth')
    # The graph holds both processes' sampled RoIs: 2 images x 128 each per process.
    assert f'distill_vertices: {WORLD_SIZE * 2 * 128}' in output, output[-3000:]
    assert 'loss_vrm_sample' in output


@pytest.mark.parametrize('launcher', ['slurm'])
def test_cpu_launch_other_than_torchrun_is_refused(launcher):
    from vrm_det.engine import setup_distributed
    if torch.cuda.is_available():
        pytest.skip('the refusal concerns machines without a GPU')
    with pytest.raises(ValueError, match='torchrun'):
        setup_distributed(Config(dict(launcher=launcher)))


# Written next to the test config and imported through its custom_imports.
KILL_ONCE_HOOK = """\
import os
import os.path as osp
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillOnceHook(Hook):
    \"\"\"SIGKILL rank ``rank`` as iteration ``before_iter`` (0-based) starts, the
    first time only: a marker file in the work dir remembers it.\"\"\"

    def __init__(self, rank, before_iter):
        self.rank, self.before_iter = rank, before_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        marker = osp.join(runner.work_dir, 'killed_once')
        if get_rank() == self.rank and runner.iter == self.before_iter \\
                and not osp.exists(marker):
            open(marker, 'w').close()
            os.kill(os.getpid(), signal.SIGKILL)
"""


def run_dist_train(config_file, cwd, *args, **extra_env):
    """``tools/dist_train.sh CONFIG 2 ARGS`` with no activated venv, as the
    script's user runs it; ``extra_env`` adds environment variables."""
    env = dict(HOME=os.environ.get('HOME', '/tmp'), PATH='/usr/bin:/bin', PORT=str(free_port()),
               OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore', **extra_env)
    if osp.abspath(sys.executable) != str(ROOT / '.venv' / 'bin' / 'python'):
        env['PYTHON'] = sys.executable
    # A session of its own: a hung run is ended with torchrun and its workers.
    launched = subprocess.Popen([str(ROOT / 'tools' / 'dist_train.sh'), str(config_file),
                                 str(WORLD_SIZE), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=env, cwd=str(cwd),
                                start_new_session=True)
    try:
        output, _ = launched.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(launched.pid, signal.SIGKILL)
        output, _ = launched.communicate()
        pytest.fail(f'tools/dist_train.sh ran past 300 s:\n{output[-3000:]}')
    assert launched.returncode == 0, output[-3000:]
    return output


def test_a_killed_process_restarts_the_group_and_training_ends_as_if_uninterrupted(
        toy_data, toy_teacher_ckpt, tmp_path):
    """MAX_RESTARTS: rank 1 is SIGKILLed during iteration 4 of 4; torchrun
    restarts both processes, which resume from iteration 2's checkpoint, redo
    iterations 3 and 4, and end with the student of a run never interrupted."""
    if not (dist.is_available() and dist.is_gloo_available()) or \
            importlib.util.find_spec('torch.distributed.run') is None:
        pytest.skip('needs torchrun (torch.distributed.run) and the gloo backend')
    cfg = toy_config(TOY_VRM, toy_data, tmp_path / 'unused', max_iters=4,
                     teacher_ckpt=toy_teacher_ckpt)
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.train_cfg.val_interval = 100
    cfg.default_hooks.checkpoint.update(interval=2, max_keep_ckpts=-1)
    cfg.model.distill_warmup_iters = 0
    (tmp_path / 'kill_once_hook.py').write_text(KILL_ONCE_HOOK)
    cfg.custom_imports = dict(imports=['kill_once_hook'], allow_failed_imports=False)
    # Rank 1 dies as iteration index 3 starts. iter_2.pth is complete by then:
    # rank 0 saved it before joining iteration index 2's gradient all-reduce.
    cfg.custom_hooks = [*cfg.get('custom_hooks', []),
                        dict(type='KillOnceHook', rank=1, before_iter=3)]
    config_file = tmp_path / 'vrm_toy.py'
    cfg.dump(str(config_file))
    env = dict(MAX_RESTARTS='1', PYTHONPATH=str(tmp_path), LOGLEVEL='INFO')

    straight, restarted = tmp_path / 'straight', tmp_path / 'restarted'
    straight.mkdir()
    (straight / 'killed_once').touch()  # the same config, the hook standing down
    output = run_dist_train(config_file, tmp_path, '--work-dir', str(straight), **env)
    assert 'will restart worker group' not in output and 'torchrun restart' not in output
    output = run_dist_train(config_file, tmp_path, '--work-dir', str(restarted), **env)
    assert (restarted / 'killed_once').is_file()
    assert 'Worker group FAILED. 1/1 attempts left; will restart worker group' in output, \
        output[-3000:]
    assert (f'torchrun restart 1 of at most 1 after a lost process: resuming from '
            f'{restarted / "iter_2.pth"}') in output, output[-3000:]
    assert 'resumed epoch: 0, iter: 2' in output

    def student(work_dir, step):
        return student_state_dict(
            load_local_checkpoint(str(work_dir / f'iter_{step}.pth'))['state_dict'])

    end_straight, end_restarted = student(straight, 4), student(restarted, 4)
    assert end_straight.keys() == end_restarted.keys()
    for key, value in end_straight.items():
        assert torch.equal(end_restarted[key], value), key
    # Iterations 3 and 4 changed the student: the comparison has teeth.
    at_two = student(straight, 2)
    assert not all(torch.equal(at_two[key], value) for key, value in end_straight.items())
