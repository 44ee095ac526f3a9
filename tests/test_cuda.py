"""Checks that need a CUDA GPU, each against an independent computation; all
skipped without one (CI). ``tools/gpu_check.sh`` runs them and fails if any
was skipped.

* the fused VRM loss on CUDA against the float64 reference on CPU;
* mmcv's RoIAlign on CUDA against its CPU kernel;
* float16 mixed precision with the grad scaler: finite training steps, and a
  step with non-finite gradients skipped;
* a one-process nccl group: all_reduce and the distiller's row gather.
"""
import datetime

import pytest
import torch
import torch.distributed as dist
from test_distributed import free_port
from test_vrm_functional import relative_error
from torch import nn

from vrm_det.functional import vrm_terms
from vrm_det.utils.benchmark_logits import CLUSTERED_SETTINGS, clustered_logits, iid_logits

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU (run tools/gpu_check.sh on one)')

B, C = 1024, 81  # the detection scale: 2 images x 512 RoIs, 80 classes and background
RTOL = 1e-4
LOGIT_KEYS = ('student_logits', 'student_virtual_logits', 'teacher_logits',
              'teacher_virtual_logits')
DISTRIBUTIONS = {
    'iid': lambda: iid_logits(B, C),
    'clustered-loose': lambda: clustered_logits(B, C, *CLUSTERED_SETTINGS[0]),
    'clustered-tight': lambda: clustered_logits(B, C, *CLUSTERED_SETTINGS[-1]),
}


def vrm_on(logits, device, dtype, impl, edge_floor, keep_percentile=100.0):
    """The VRM terms, their weighted sum and its gradients in the student's
    two logit matrices, computed on ``device`` in ``dtype``."""
    S, V, T, W = (logits[key].to(device, dtype) for key in LOGIT_KEYS)
    S, V = S.requires_grad_(True), V.requires_grad_(True)
    terms = vrm_terms(S, V, T, W, keep_percentile=keep_percentile, impl=impl,
                      edge_floor=edge_floor, chunk_size=128 if impl == 'reference' else None)
    # Weights as the detection configs' ratio: the gradient sees both graphs.
    value = 128 * terms.inter_sample + 32 * terms.inter_class
    grads = torch.autograd.grad(value, [S, V])
    return terms, value.detach(), [g.cpu() for g in grads]


def assert_relative(got, want, what):
    got, want = got.item(), want.item()
    error = abs(got - want) / abs(want)
    assert error <= RTOL, f'{what}: {got!r} vs {want!r} (relative {error:.2e})'


@pytest.mark.parametrize('edge_floor', [0.0, 0.5])
@pytest.mark.parametrize('distribution', list(DISTRIBUTIONS))
def test_fused_vrm_on_cuda_matches_float64_reference_on_cpu(distribution, edge_floor):
    logits = DISTRIBUTIONS[distribution]()
    terms, value, grads = vrm_on(logits, 'cuda', torch.float32, 'fused', edge_floor)
    want_terms, want_value, want_grads = vrm_on(logits, 'cpu', torch.float64, 'reference',
                                                edge_floor)
    assert value.device.type == 'cuda' and value.dtype == torch.float32
    assert_relative(terms.inter_sample, want_terms.inter_sample, 'inter-sample term')
    assert_relative(terms.inter_class, want_terms.inter_class, 'inter-class term')
    assert_relative(value, want_value, 'weighted sum')
    for name, got, want in zip(('student', 'student_virtual'), grads, want_grads):
        assert torch.isfinite(got).all(), name
        error = relative_error(got, want)
        assert error <= RTOL, f'gradient in {name}: relative error {error:.2e}'


def test_entropy_pruning_on_cuda_matches_float64_reference_on_cpu():
    """The 95th-percentile pruning (the configs' default) keeps the same edges;
    float32 rounding may move the odd edge at the threshold, no more."""
    logits = iid_logits(B, C)
    terms, _, _ = vrm_on(logits, 'cuda', torch.float32, 'fused', 0.5, keep_percentile=95)
    want, _, _ = vrm_on(logits, 'cpu', torch.float64, 'reference', 0.5, keep_percentile=95)
    differing = int((terms.pruned.cpu() != want.pruned).sum())
    assert differing <= 10, f'{differing} of {B * B} edges pruned differently'
    assert abs(terms.kept_fraction.item() - want.kept_fraction.item()) <= 10 / B**2


def test_mmcv_is_built_with_cuda_ops():
    from mmcv.ops import get_compiling_cuda_version
    assert get_compiling_cuda_version() != 'not available', (
        'mmcv was compiled without its CUDA ops; rebuild it: .venv/bin/pip uninstall -y mmcv '
        '&& rm -f .venv/.stamps/mmcv && make install MMCV_WITH_CUDA=1')


@pytest.mark.parametrize('sampling_ratio, aligned', [(0, True), (2, False)])
def test_mmcv_roi_align_on_cuda_matches_cpu(sampling_ratio, aligned):
    """Forward and the gradient in the features, as mmdet's RoI head uses it
    (stride 4 level, 7x7 output): CUDA kernel against CPU kernel."""
    from mmcv.ops import RoIAlign

    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 16, 32, 40, generator=gen)
    num_rois = 64
    corner = torch.rand(num_rois, 2, generator=gen) * torch.tensor([150.0, 120.0]) - 10
    size = 2 + torch.rand(num_rois, 2, generator=gen) * 60  # some reach past the image
    rois = torch.cat([torch.randint(2, (num_rois, 1), generator=gen).float(), corner,
                      corner + size], dim=1)
    upstream = torch.randn(num_rois, 16, 7, 7, generator=gen)
    layer = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=sampling_ratio,
                     pool_mode='avg', aligned=aligned)

    def run(device):
        feats = features.to(device).requires_grad_(True)
        out = layer(feats, rois.to(device))
        (grad,) = torch.autograd.grad(out, feats, upstream.to(device))
        return out.detach().cpu(), grad.cpu()

    out_cuda, grad_cuda = run('cuda')
    out_cpu, grad_cpu = run('cpu')
    assert out_cpu.abs().sum() > 0
    torch.testing.assert_close(out_cuda, out_cpu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_cuda, grad_cpu, rtol=1e-5, atol=1e-5)


def build_amp_wrapper(kind, model):
    from mmengine.optim import AmpOptimWrapper

    from vrm_det.engine import MixedPrecisionOptimWrapper
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if kind == 'mmengine':
        return AmpOptimWrapper(optimizer=optimizer)
    wrapper = MixedPrecisionOptimWrapper(optimizer=optimizer)
    assert not wrapper._skip_nonfinite  # with CUDA it defers to the grad scaler
    return wrapper


@pytest.mark.parametrize('kind', ['mmengine', 'vrm_det'])
def test_fp16_amp_trains_and_the_scaler_skips_a_nonfinite_step(kind):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1)).cuda()
    wrapper = build_amp_wrapper(kind, model)
    inputs, targets = torch.randn(64, 8, device='cuda'), torch.randn(64, 1, device='cuda')

    def step(inject_inf=False):
        before = [p.detach().clone() for p in model.parameters()]
        with wrapper.optim_context(model):
            out = model(inputs)
            assert out.dtype == torch.float16  # autocast is on
            loss = (out.float() - targets).pow(2).mean()
            if inject_inf:
                # An overflow reaching the gradients, as an fp16 overflow does.
                loss = loss * float('inf')
        scale = wrapper.loss_scaler.get_scale()
        wrapper.update_params(loss)
        changed = [not torch.equal(a, p.detach()) for a, p in zip(before, model.parameters())]
        return loss.item(), changed, scale

    losses = []
    for _ in range(4):
        loss, changed, _ = step()
        losses.append(loss)
        assert all(changed)
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert losses[-1] < losses[0]

    before = [p.detach().clone() for p in model.parameters()]
    loss, changed, scale = step(inject_inf=True)
    assert not torch.isfinite(torch.tensor(loss))
    assert not any(changed)
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert wrapper.loss_scaler.get_scale() < scale  # the scaler backed off
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())

    loss, changed, _ = step()  # and training goes on
    assert torch.isfinite(torch.tensor(loss)) and all(changed)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.fixture
def nccl_group(monkeypatch):
    assert dist.is_nccl_available(), 'this torch build has no nccl backend'
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    torch.cuda.set_device(0)
    dist.init_process_group('nccl', rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=60))
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_nccl_one_process_all_reduce_and_row_gather(nccl_group):
    from vrm_det.models.distillers.gather import (
        _GatherRows,
        gather_graph,
        gathering_world_size,
    )

    assert dist.get_backend() == 'nccl' and gathering_world_size() == 1
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(5, 7, generator=gen)
    reduced = values.cuda()
    dist.all_reduce(reduced)  # the sum over one process
    torch.cuda.synchronize()
    assert torch.equal(reduced.cpu(), values)

    logits = torch.randn(6, 2 * C, generator=gen).cuda().requires_grad_(True)
    labels = torch.randint(C, (6,), generator=gen).cuda()
    gathered, gathered_labels = gather_graph(logits, labels)
    assert gathered is logits and gathered_labels is labels  # one process: nothing to join

    # The collective gather_graph runs with several processes, on this group:
    # all_gather of the padded rows, and a backward returning this rank's slice.
    rows = _GatherRows.apply(logits, [len(logits)], 0)
    assert torch.equal(rows.detach(), logits.detach())
    upstream = torch.randn(rows.shape, generator=gen).cuda()
    (grad,) = torch.autograd.grad(rows, logits, upstream)
    assert torch.equal(grad, upstream)  # times the world size, 1
