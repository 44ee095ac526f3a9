"""Checkpoints written by mmengine load and resume; foreign pickles are refused."""
import os

import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner, load_checkpoint
from torch import nn

import vrm_det  # noqa: F401  (installs the safe loader)
from vrm_det.checkpoint import UntrustedCheckpointError


class TinyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def make_runner(work_dir, max_iters, **kwargs):
    data = [dict(inputs=torch.randn(3), data_samples=torch.zeros(1)) for _ in range(8)]
    return Runner(
        model=TinyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=data, batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False)),
        randomness=dict(seed=0), **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('runner')
    runner = make_runner(work_dir, max_iters=4)
    runner.train()
    return work_dir, runner


def test_runner_checkpoint_holds_mmengine_types_and_loads(trained):
    work_dir, runner = trained
    checkpoint = CheckpointLoader.load_checkpoint(str(work_dir / 'iter_4.pth'))
    hub = checkpoint['message_hub']
    assert type(hub['log_scalars']['train/loss']).__name__ == 'HistoryBuffer'
    assert checkpoint['meta']['iter'] == 4
    model = TinyModel()
    load_checkpoint(model, str(work_dir / 'iter_4.pth'))
    torch.testing.assert_close(model.linear.weight, runner.model.linear.weight)


def test_resume_continues_from_the_saved_iteration(trained):
    work_dir, runner = trained
    resumed = make_runner(work_dir, max_iters=6, resume=True,
                          load_from=str(work_dir / 'iter_4.pth'))
    resumed.train()
    assert resumed.iter == 6
    momentum = resumed.optim_wrapper.optimizer.state_dict()['state']
    assert momentum, 'optimizer state was not restored'


def test_load_from_in_a_config_works(trained):
    work_dir, runner = trained
    fresh = make_runner(work_dir / 'again', max_iters=4, load_from=str(work_dir / 'iter_4.pth'))
    fresh.load_or_resume()
    torch.testing.assert_close(fresh.model.linear.weight, runner.model.linear.weight)


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_checkpoint_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / 'payload_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'linear.weight': torch.zeros(1, 3)}, 'meta': Payload(marker)},
               path)
    with pytest.raises(UntrustedCheckpointError) as error:
        load_checkpoint(TinyModel(), str(path))
    message = str(error.value)
    assert 'posix.system' in message or 'os.system' in message
    assert 'weights_only=False' in message and 'trust' in message
    assert not marker.exists()


def test_getattr_is_allowed_only_for_history_buffer_statistics(tmp_path):
    # HistoryBuffer itself is allow-listed, so only the getattr guard can refuse this.
    class GetattrPayload:
        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = tmp_path / 'getattr.pth'
    torch.save({'x': GetattrPayload()}, path)
    with pytest.raises(UntrustedCheckpointError, match="attribute '__init__'"):
        CheckpointLoader.load_checkpoint(str(path))


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nothing.pth'))
