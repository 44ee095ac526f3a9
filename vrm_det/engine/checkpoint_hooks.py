"""Checkpoints that survive a crash mid-save, and resumes that continue the
random streams where the interrupted run left them."""
import os.path as osp
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size, is_main_process
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from vrm_det.checkpoint import write_atomically

ATOMIC_LOCAL_BACKEND = 'atomic_local'


@register_backend(ATOMIC_LOCAL_BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, writing every file atomically
    (:func:`vrm_det.checkpoint.write_atomically`)."""

    def put(self, obj: bytes, filepath) -> None:
        write_atomically(str(filepath), obj)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        write_atomically(str(filepath), obj.encode(encoding))


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook``, with checkpoints that survive a crash
    mid-save.

    mmengine's hook deletes the oldest kept checkpoint *before* writing the
    new one, writes in place, and rewrites ``last_checkpoint`` in place: a
    process killed while saving (preempted, out of memory) can leave no
    loadable checkpoint and a ``last_checkpoint`` pointing at a truncated
    file. Here every file is written to a ``.partial`` file and renamed, and
    old checkpoints are deleted only once the new one and ``last_checkpoint``
    are complete. Same arguments as ``CheckpointHook``; local output
    directories use :class:`AtomicLocalBackend` unless ``backend_args`` says
    otherwise.
    """

    def __init__(self, *args, out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None, **kwargs) -> None:
        if backend_args is None and (out_dir is None or '://' not in str(out_dir)):
            backend_args = dict(backend=ATOMIC_LOCAL_BACKEND)
        super().__init__(*args, out_dir=out_dir, backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        retired = []
        if self.max_keep_ckpts > 0 and (not self.keep_ckpt_ids
                                        or self.keep_ckpt_ids[-1] != step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired.append(self.keep_ckpt_ids[0])
            self.keep_ckpt_ids.append(step)  # the deque drops the oldest
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta,
                               by_epoch=self.by_epoch, backend_args=self.backend_args,
                               **self.args)
        if not is_main_process():
            return
        write_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)
        for old_step in retired:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # DeepSpeed writes directories
                self.file_backend.rmtree(path)


def capture_random_states() -> dict:
    """The states of the global random streams of this process."""
    states = dict(python=random.getstate(), numpy=np.random.get_state(),
                  torch=torch.get_rng_state())
    if torch.cuda.is_available():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict, streams=('python', 'numpy', 'torch', 'cuda')) -> None:
    """Set the global random streams named in ``streams`` to ``states``."""
    if 'python' in streams:
        version, internal, gauss = states['python']
        random.setstate((version, tuple(internal), gauss))
    if 'numpy' in streams:
        np.random.set_state(states['numpy'])
    if 'torch' in streams:
        torch.set_rng_state(states['torch'])
    if 'cuda' in streams and 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


def _checkpoint_due(runner, event: str) -> bool:
    """Whether a ``CheckpointHook`` of ``runner`` saves at this ``event``
    (``'iter'``, ``'epoch'`` or ``'val'``), by the hook's own rule. Every rank
    reaches the same answer: it depends on the position and the config only."""
    for hook in runner.hooks:
        if not isinstance(hook, CheckpointHook):
            continue
        if event == 'val':
            if getattr(hook, 'save_best', None):
                return True
        elif event == 'iter' and not hook.by_epoch:
            if hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
                    hook.save_last and hook.is_last_train_iter(runner)):
                return True
        elif event == 'epoch' and hook.by_epoch:
            if hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
                    hook.save_last and hook.is_last_train_epoch(runner)):
                return True
    return False


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random streams of every process with every checkpoint; on
    resume, each process continues its own.

    mmengine's resume reseeds the run and replays the data loader up to the
    saved iteration (the sampler's position and the data pipeline's draws
    come back that way), but the draws the model made (the virtual view's
    RandAugment, the RoI sampler, the vertex subset) are not replayed. This
    hook stores the global streams in ``meta['random_states']`` and restores
    them just before the first resumed iteration runs, so that iteration
    draws what the uninterrupted run drew. The distillers hold no generator
    of their own (the pruning's sample generator is reseeded from the graph
    size every call), so the global streams are all there is.

    ``meta['random_states']`` is a list: entry ``r`` holds the streams of rank
    ``r`` (one entry in a single-process run). Only rank 0 writes the
    checkpoint, so in a multi-process run the states are gathered from every
    rank (``all_gather_object``) at the step where a ``CheckpointHook`` is due
    to save (after a training iteration or epoch, or after validation when it
    keeps the best checkpoint); a checkpoint saved at any other point holds
    rank 0's streams only, with a warning. On resume rank ``r`` restores entry
    ``r``. When the checkpoint was written by a different number of processes
    rank ``r`` takes entry ``r % len(list)``, with a warning: the run goes on,
    but does not repeat the uninterrupted one. A checkpoint of the older
    layout (one dict, rank 0's streams) is still read: every rank restores
    it, with a warning when there is more than one rank.

    With ``num_workers=0`` the data pipeline draws from this process's
    Python and numpy streams, which the replay has already brought to the
    right state: then only torch's streams are restored.
    """
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._resumed_states: Optional[dict] = None
        self._gathered: Optional[list] = None

    def _gather(self, runner) -> None:
        self._gathered = all_gather_object(capture_random_states())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if get_world_size() > 1 and _checkpoint_due(runner, 'iter'):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        if get_world_size() > 1 and _checkpoint_due(runner, 'epoch'):
            self._gather(runner)

    def before_val_epoch(self, runner) -> None:
        self._gathered = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        if get_world_size() > 1 and _checkpoint_due(runner, 'val'):
            self._gather(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered
        if states is None:
            states = [capture_random_states()]
            if get_world_size() > 1:
                runner.logger.warning(
                    'RandomStateHook: this checkpoint is saved outside the steps where a '
                    'CheckpointHook saves; it holds rank 0\'s random streams only')
        checkpoint.setdefault('meta', {})['random_states'] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('meta', {}).get('random_states')
        self._resumed_states = None
        if saved is None:
            runner.logger.warning('the checkpoint holds no random states (saved without '
                                  'RandomStateHook): the resumed run draws different '
                                  'virtual views and RoI samples than an uninterrupted one')
            return
        rank, world_size = get_rank(), get_world_size()
        if isinstance(saved, dict):  # the older layout: rank 0's streams only
            if world_size > 1:
                runner.logger.warning(
                    'the checkpoint holds the random streams of rank 0 only (saved by an '
                    'older RandomStateHook): every rank restores them, and ranks above 0 '
                    'draw differently from the uninterrupted run')
            self._resumed_states = saved
            return
        if len(saved) != world_size:
            runner.logger.warning(
                f'the checkpoint holds the random streams of {len(saved)} processes, this '
                f'run has {world_size}: rank r restores those of rank r % {len(saved)}, and '
                'the resumed run does not draw what the uninterrupted one drew')
        self._resumed_states = saved[rank % len(saved)]

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._gathered = None
        if self._resumed_states is None:
            return
        streams = ('torch', 'cuda')
        if runner.train_dataloader.num_workers > 0:
            streams += ('python', 'numpy')
        restore_random_states(self._resumed_states, streams)
        self._resumed_states = None
