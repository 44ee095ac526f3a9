"""The VRM math against independent float64 computations."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vrm_det.functional import (
    direct_edge_mask,
    edge_matching_error_fused,
    edge_matching_error_reference,
    gram_matching_error,
    inter_class_vertices,
    joint_entropy,
    kth_smallest,
    unit_edges,
    unreliable_edge_mask,
    vrm_terms,
)
from vrm_det.utils.benchmark_logits import CLUSTERED_SETTINGS, clustered_logits

#: The floor the detection configs set (VRM's own default is 0, the paper's unit edges).
FLOOR = 0.5


def independent_floor(real, virtual, edge_dim, relative=FLOOR):
    """The documented edge-length floor, in numpy float64: ``relative * sqrt(D)``
    times the RMS of the logits after removing each row's mean."""
    x = np.concatenate([real.detach().numpy(), virtual.detach().numpy()]).astype(np.float64)
    scale = np.sqrt(((x - x.mean(1, keepdims=True))**2).mean())
    return max(relative * math.sqrt(edge_dim) * scale, 1e-12)


def independent_edge_error(s_src, s_dst, t_src, t_dst, penalty='l2', delta=1.0,
                           s_floor=1e-12, t_floor=1e-12):
    """Per-edge error in float64 torch with explicit loops over source rows;
    each edge is divided by max(its norm, floor)."""
    rows = []
    for i in range(s_src.shape[0]):
        ds = s_src[i].double() - s_dst.double()
        dt = t_src[i].double() - t_dst.double()
        us = ds / ds.norm(dim=1, keepdim=True).clamp_min(s_floor)
        ut = dt / dt.norm(dim=1, keepdim=True).clamp_min(t_floor)
        diff = us - ut
        if penalty == 'l2':
            rows.append((diff**2).sum(1))
        else:
            a = diff.abs()
            rows.append(torch.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)).sum(1))
    return torch.stack(rows)


def independent_vrm(S, V, T, W, percentile=100.0, relative_floor=FLOOR):
    """Inter-sample and inter-class terms with numpy entropies and torch float64
    edges (differentiable in S and V when they are float64 leaves)."""
    def entropy(x):
        x = x.detach().double().numpy()
        z = x - x.max(1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
        return -(np.exp(log_p) * log_p).sum(1)

    je = entropy(S)[:, None] + entropy(V)[None, :]
    k = round(percentile / 100 * je.size)
    threshold = np.sort(je.ravel())[k - 1] if k else -np.inf
    kept = torch.from_numpy(je <= threshold)
    B, C = S.shape
    # One floor for both graphs, from the teacher's logits.
    floor_is = independent_floor(T, W, C, relative_floor)
    floor_ic = independent_floor(T, W, B, relative_floor)
    err_is = independent_edge_error(S, V, T, W, s_floor=floor_is, t_floor=floor_is)
    inter_sample = (err_is * kept).sum() / max(kept.sum(), 1)
    inter_class = independent_edge_error(S.T, V.T, T.T, W.T, s_floor=floor_ic,
                                         t_floor=floor_ic).mean()
    return inter_sample, inter_class, kept.double().mean().item()


def make_logits(kind, B=24, C=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    S, V = torch.randn(B, C, generator=g), torch.randn(B, C, generator=g)
    T, W = 2 * torch.randn(B, C, generator=g), 2 * torch.randn(B, C, generator=g)
    if kind == 'near_duplicate_rows':
        S[1:6] = S[0] + 1e-4 * torch.randn(5, C, generator=g)
        V[1:6] = S[0] + 1e-4 * torch.randn(5, C, generator=g)
        T[1:6] = T[0] + 1e-4 * torch.randn(5, C, generator=g)
    elif kind == 'identical_views':
        V[:8], W[:8] = S[:8], T[:8]
    elif kind == 'large_magnitude':
        S, T = 1e3 * S, 1e3 * T
        V = S + torch.randn(B, C, generator=g)
        W = T + torch.randn(B, C, generator=g)
    elif kind == 'tiny_differences':
        V = S + 1e-6 * torch.randn(B, C, generator=g)
        W = T + 1e-6 * torch.randn(B, C, generator=g)
    return S, V, T, W


KINDS = ['random', 'near_duplicate_rows', 'identical_views', 'large_magnitude',
         'tiny_differences']


def relative_error(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('impl', ['fused', 'reference'])
@pytest.mark.parametrize('relative_floor', [0.0, FLOOR])
def test_matching_error_matches_float64(kind, impl, relative_floor):
    logits = [x.requires_grad_(True) for x in make_logits(kind)]
    S, V, T, W = logits
    C = S.shape[1]
    s_floor = independent_floor(S, V, C, relative_floor)
    t_floor = independent_floor(T, W, C, relative_floor)
    compute = edge_matching_error_fused if impl == 'fused' else edge_matching_error_reference
    # Weights make the gradient check sensitive to every edge, not only the mean.
    weights = torch.rand(S.shape[0], V.shape[0], generator=torch.Generator().manual_seed(1))
    value = (compute(S, V, T, W, s_floor=s_floor, t_floor=t_floor) * weights).sum()
    # The teacher's gradient too: the function is symmetric in the two graphs.
    grads = torch.autograd.grad(value, logits)

    logits64 = [x.detach().double().requires_grad_() for x in logits]
    expected = (independent_edge_error(*logits64, s_floor=s_floor, t_floor=t_floor)
                * weights.double()).sum()
    expected_grads = torch.autograd.grad(expected, logits64)
    assert abs(value.item() - expected.item()) <= 1e-5 * abs(expected.item())
    for got, want in zip(grads, expected_grads):
        assert relative_error(got, want) <= 1e-5


@pytest.mark.parametrize('kind', KINDS)
def test_vrm_terms_fused_and_reference_match_float64(kind):
    S, V, T, W = make_logits(kind)
    # The hard inputs tie in joint entropy (saturated softmax, views equal up to
    # 1e-6), so which tied edge falls at the percentile is rounding noise there.
    percentile = 90 if kind == 'random' else 100
    want_is, want_ic, want_kept = independent_vrm(S, V, T, W, percentile)
    for impl in ('fused', 'reference'):
        terms = vrm_terms(S, V, T, W, keep_percentile=percentile, impl=impl,
                          edge_floor=FLOOR)
        assert abs(terms.inter_sample.item() - want_is.item()) <= 1e-5 * want_is.item()
        assert abs(terms.inter_class.item() - want_ic.item()) <= 1e-5 * want_ic.item()
        assert terms.kept_fraction.item() == pytest.approx(want_kept)


def clustered(setting, B=128, C=81, offset=0.0):
    """The benchmark's clustered logits; ``offset`` shifts every logit alike."""
    logits = clustered_logits(B, C, *setting)
    return [logits[key] + offset for key in ('student_logits', 'student_virtual_logits',
                                             'teacher_logits', 'teacher_virtual_logits')]


@pytest.mark.parametrize('setting', CLUSTERED_SETTINGS, ids=lambda s: f'spread{s[1]}')
@pytest.mark.parametrize('relative_floor', [0.0, FLOOR])
def test_fused_vrm_matches_float64_on_clustered_logits(setting, relative_floor):
    """Three quarters of the rows in a tight cluster and the views within 2e-4
    to 2e-2 of each other, as a trained detector's RoIs: both graphs' value and
    gradient against float64 loops. Without a floor most cluster edges must
    take the direct computation; with it none need to."""
    assert_vrm_matches_float64(*clustered(setting), relative_floor)


def assert_vrm_matches_float64(S, V, T, W, relative_floor):
    """Both graphs' weighted value and the student gradients of the fused
    computation within 1e-5 (relative) of the float64 loops."""
    S, V = S.clone().requires_grad_(True), V.clone().requires_grad_(True)
    terms = vrm_terms(S, V, T, W, keep_percentile=100, edge_floor=relative_floor)
    value = 128 * terms.inter_sample + 32 * terms.inter_class
    grads = torch.autograd.grad(value, [S, V])

    S64, V64 = S.detach().double().requires_grad_(), V.detach().double().requires_grad_()
    want_is, want_ic, _ = independent_vrm(S64, V64, T, W, relative_floor=relative_floor)
    expected = 128 * want_is + 32 * want_ic
    expected_grads = torch.autograd.grad(expected, [S64, V64])
    assert abs(value.item() - expected.item()) <= 1e-5 * abs(expected.item())
    for got, want in zip(grads, expected_grads):
        assert relative_error(got, want) <= 1e-5


@pytest.mark.parametrize('offset', [0.0, 50.0])
def test_clustered_logits_need_no_direct_edges_under_the_floor(offset):
    """Below the floor an edge's error is measured against the floor, so tight
    clusters and close views keep the fast expansion (the fused loss ran up to
    30x slower when they went to the direct computation). A logit offset
    shared by every row (which the softmax ignores) changes nothing."""
    S, V, T, W = clustered(CLUSTERED_SETTINGS[-1], offset=offset)
    for graph in ((S, V, T, W), (S.T, V.T, T.T, W.T)):
        floor = independent_floor(T, W, graph[0].shape[1])
        assert not direct_edge_mask(*graph, s_floor=floor, t_floor=floor).any()
    # Without the floor the cluster's edges are ill-conditioned and go direct.
    assert direct_edge_mask(S, V, T, W).float().mean() > 0.3


def test_floor_keeps_long_edges_unit_and_scales_short_ones_by_the_floor():
    S, V, _, _ = make_logits('random', B=6, C=5)
    V[:3] = S[:3] + 1e-3  # three near-coincident pairs on the diagonal
    floor = independent_floor(S, V, 5)
    edges = unit_edges(S, V, floor).double()
    lengths = (S[:, None].double() - V[None].double()).norm(dim=-1)
    want = torch.where(lengths >= floor, torch.ones_like(lengths), lengths / floor)
    torch.testing.assert_close(edges.norm(dim=-1), want, rtol=1e-5, atol=1e-7)
    assert (lengths < floor).sum() >= 3 and (lengths >= floor).any()


@pytest.mark.parametrize('impl', ['fused', 'reference'])
def test_near_coincident_views_give_bounded_row_gradients(impl):
    """Rows whose real and virtual logits differ by 1e-6 to 1e-3 (a confident
    RoI under a photometric change), or coincide exactly for the student while
    the teacher's differ (a collapsed student head), get gradients within 4x
    the median row's; without the floor they reach 1e3x and far more."""
    g = torch.Generator().manual_seed(0)
    B, C = 64, 12
    S = 3 * torch.randn(B, C, generator=g)
    T = 3 * torch.randn(B, C, generator=g)
    gaps = torch.full((B,), 0.5)
    gaps[:16] = torch.logspace(-6, -3, 16)
    V = S + gaps[:, None] * torch.randn(B, C, generator=g)
    W = T + gaps[:, None] * torch.randn(B, C, generator=g)
    V[16:20] = S[16:20]  # exactly equal student views, distinct teacher views
    W[16:20] = T[16:20] + 1e-3 * torch.randn(4, C, generator=g)
    S.requires_grad_(True)
    V.requires_grad_(True)
    terms = vrm_terms(S, V, T, W, keep_percentile=100, impl=impl, edge_floor=FLOOR)
    (128 * terms.inter_sample + 32 * terms.inter_class).backward()
    row_norms = torch.cat([S.grad, V.grad]).norm(dim=1)
    assert torch.isfinite(row_norms).all()
    assert row_norms.max() <= 4 * row_norms.median()
    unfloored = vrm_terms(S, V, T, W, keep_percentile=100, impl=impl, edge_floor=0.0)
    S.grad = V.grad = None
    (128 * unfloored.inter_sample + 32 * unfloored.inter_class).backward()
    row_norms = torch.cat([S.grad, V.grad]).norm(dim=1)
    assert row_norms.max() > 1e3 * row_norms.median()  # what the floor prevents


def test_huber_penalty_matches_float64():
    S, V, T, W = make_logits('random')
    got = edge_matching_error_reference(S, V, T, W, penalty='huber', huber_delta=0.3)
    want = independent_edge_error(S, V, T, W, penalty='huber', delta=0.3)
    assert relative_error(got, want) <= 1e-5


def test_chunked_reference_equals_unchunked_in_value_and_gradient():
    S, V, T, W = make_logits('random', B=13)
    S.requires_grad_(True)
    full = edge_matching_error_reference(S, V, T, W)
    chunked = edge_matching_error_reference(S, V, T, W, chunk_size=4)
    torch.testing.assert_close(chunked, full)
    g_full, = torch.autograd.grad(full.sum(), S)
    g_chunk, = torch.autograd.grad(chunked.sum(), S)
    torch.testing.assert_close(g_chunk, g_full)


def test_edges_are_unit_vectors_and_zero_for_coinciding_endpoints():
    S, V, _, _ = make_logits('identical_views')
    norms = unit_edges(S, V).norm(dim=-1)
    coincide = (S[:, None, :] == V[None, :, :]).all(-1)
    torch.testing.assert_close(norms[~coincide], torch.ones_like(norms[~coincide]))
    assert coincide.sum() == 8 and (norms[coincide] == 0).all()


def test_inter_sample_block_is_slice_of_full_graph():
    S, V, _, _ = make_logits('random', B=7, C=5)
    vertices = torch.cat([S, V])
    full = unit_edges(vertices, vertices)  # (2B, 2B, C), antisymmetric
    torch.testing.assert_close(unit_edges(S, V), full[:7, 7:])
    torch.testing.assert_close(full[7:, :7], -full[:7, 7:].transpose(0, 1))


def test_edges_and_terms_are_invariant_to_a_temperature():
    S, V, T, W = make_logits('random')
    torch.testing.assert_close(unit_edges(S / 3.7, V / 3.7), unit_edges(S, V))
    a = vrm_terms(S, V, T, W, keep_percentile=100, edge_floor=FLOOR)
    # One temperature for both models: the floor follows the teacher's scale.
    b = vrm_terms(S / 3.7, V / 3.7, T / 3.7, W / 3.7, keep_percentile=100, edge_floor=FLOOR)
    torch.testing.assert_close(b.inter_sample, a.inter_sample)
    torch.testing.assert_close(b.inter_class, a.inter_class)
    # Without a floor each model's temperature is free.
    a = vrm_terms(S, V, T, W, keep_percentile=100, edge_floor=0)
    b = vrm_terms(S / 3.7, V / 3.7, T / 0.5, W / 0.5, keep_percentile=100, edge_floor=0)
    torch.testing.assert_close(b.inter_sample, a.inter_sample)
    torch.testing.assert_close(b.inter_class, a.inter_class)


def test_the_floor_follows_the_teacher_scale_and_bounds_a_small_student():
    """A student whose logits are far smaller than the teacher's (early in
    training, or collapsed) gets a gradient bounded by the teacher's floor,
    not by its own tiny edge lengths."""
    S, V, T, W = make_logits('random')
    grads = []
    for shrink in (1e-2, 1e-4):
        s, v = (S * shrink).requires_grad_(), (V * shrink).requires_grad_()
        terms = vrm_terms(s, v, T, W, keep_percentile=100, edge_floor=FLOOR)
        (terms.inter_sample + terms.inter_class).backward()
        grads.append(torch.cat([s.grad, v.grad]).norm())
    # All edges below the floor: the loss is linear-quadratic in d / floor,
    # so shrinking the student 100x more changes its gradient by less than 2x.
    assert grads[1] < 2 * grads[0]


def test_concat_inter_class_edges_are_upper_triangle_of_stacked_columns():
    S, V, T, W = make_logits('random', B=6, C=5)
    src, dst, mask = inter_class_vertices(S, V, 'concat')
    assert src.shape == (5, 12) and mask.sum() == 10 and not mask.diagonal().any()
    want = []
    stacked_s, stacked_t = torch.cat([S, V]).double(), torch.cat([T, W]).double()
    for a in range(5):
        for b in range(a + 1, 5):
            es = stacked_s[:, a] - stacked_s[:, b]
            et = stacked_t[:, a] - stacked_t[:, b]
            want.append(((es / es.norm() - et / et.norm())**2).sum())
    terms = vrm_terms(S, V, T, W, ic_edges='concat', edge_floor=0)  # the edge selection alone
    assert terms.inter_class.item() == pytest.approx(torch.stack(want).mean().item(), rel=1e-5)


def test_gram_relation_matches_cosine_computation():
    S, V, T, W = make_logits('random', B=5, C=4)
    got = gram_matching_error(S, V, T, W)
    for i in range(5):
        for j in range(5):
            cs = np.dot(S[i], V[j]) / (np.linalg.norm(S[i]) * np.linalg.norm(V[j]))
            ct = np.dot(T[i], W[j]) / (np.linalg.norm(T[i]) * np.linalg.norm(W[j]))
            assert got[i, j].item() == pytest.approx((cs - ct)**2, rel=1e-4, abs=1e-7)


def test_cross_joint_entropy_matches_numpy():
    S, V, _, _ = make_logits('random', B=4, C=3)
    p = torch.softmax(S.double(), 1).numpy()
    q = torch.softmax(V.double(), 1).numpy()
    want = np.array([[-(p[i] * np.log(q[j])).sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(joint_entropy(S, V, 'cross').numpy(), want, rtol=1e-5)


@pytest.mark.parametrize('percentile', [50, 80, 95])
def test_kept_fraction_matches_percentile_and_drops_highest_entropy(percentile):
    S, V, T, W = make_logits('random', B=40)
    entropy = joint_entropy(S, V)
    pruned = unreliable_edge_mask(entropy, percentile)
    assert (~pruned).float().mean().item() == pytest.approx(percentile / 100, abs=1 / 1600)
    assert entropy[pruned].min() > entropy[~pruned].max()
    assert vrm_terms(S, V, T, W, keep_percentile=percentile).kept_fraction.item() == \
        pytest.approx(percentile / 100, abs=1 / 1600)


def test_pruned_set_follows_the_student_predictions():
    S, V, _, _ = make_logits('random', B=20)
    before = unreliable_edge_mask(joint_entropy(S, V), 80)
    sharpened = S.clone()
    sharpened[:5] *= 10  # five samples become confident: their edges become reliable
    after = unreliable_edge_mask(joint_entropy(sharpened, V), 80)
    assert not torch.equal(before, after)
    assert after[:5].float().mean() < before[:5].float().mean()


def test_teacher_gets_no_gradient_and_student_gets_it_through_both_views():
    S, V, T, W = [x.requires_grad_(True) for x in make_logits('random')]
    terms = vrm_terms(S, V, T, W)
    (terms.inter_sample + terms.inter_class).backward()
    assert T.grad is None and W.grad is None
    assert S.grad.abs().sum() > 0 and V.grad.abs().sum() > 0


@pytest.mark.parametrize('batch', [0, 1])
def test_degenerate_batches_give_connected_zero(batch):
    S, V, T, W = [x[:batch].requires_grad_(True) for x in make_logits('random')]
    terms = vrm_terms(S, V, T, W)
    total = terms.inter_sample + terms.inter_class
    assert total.item() == 0 and total.requires_grad
    total.backward()
    assert torch.isfinite(S.grad).all() and S.grad.shape == (batch, 10)


def test_all_edges_pruned_gives_zero_with_kept_fraction_zero():
    S, V, T, W = [x.requires_grad_(True) for x in make_logits('random')]
    terms = vrm_terms(S, V, T, W, keep_percentile=0)
    assert terms.inter_sample.item() == 0 and terms.kept_fraction.item() == 0
    terms.inter_sample.backward()
    assert torch.isfinite(S.grad).all()


@pytest.mark.parametrize('impl', ['fused', 'reference'])
def test_identical_rows_give_finite_values_and_gradients(impl):
    S = torch.ones(6, 4, requires_grad=True)
    V = torch.ones(6, 4, requires_grad=True)
    T, W = torch.ones(6, 4), torch.ones(6, 4)
    terms = vrm_terms(S, V, T, W, impl=impl)
    (terms.inter_sample + terms.inter_class).backward()
    assert math.isfinite(terms.inter_sample.item()) and math.isfinite(terms.inter_class.item())
    assert torch.isfinite(S.grad).all() and torch.isfinite(V.grad).all()


@pytest.mark.parametrize('kind', ['uniform', 'ties', 'sorted', 'reversed', 'constant',
                                  'separable'])
@pytest.mark.parametrize('fraction', [0.0, 0.05, 0.5, 0.95, 1.0])
def test_kth_smallest_equals_kthvalue(kind, fraction):
    g = torch.Generator().manual_seed(0)
    n = 300 * 300
    values = {
        'uniform': torch.rand(n, generator=g),
        'ties': torch.randint(0, 7, (n,), generator=g).float(),
        'sorted': torch.arange(n).float(),
        'reversed': torch.arange(n).flip(0).float(),
        'constant': torch.full((n,), 2.5),
        'separable': (torch.rand(300, 1, generator=g) + torch.rand(1, 300, generator=g)),
    }[kind]
    k = min(n, max(1, round(fraction * n)))
    assert kth_smallest(values, k).item() == values.flatten().kthvalue(k).values.item()


def test_kth_smallest_rejects_out_of_range_k():
    with pytest.raises(ValueError, match='k=0'):
        kth_smallest(torch.rand(10), 0)


def test_fused_vrm_matches_float64_on_captured_logits():
    """RoI logits captured from one training step of the toy VRM config
    (``tools/capture_logits.py``: the trained demo teacher and VRM student;
    every fourth of the step's 1024 RoIs, most of them background): both
    graphs' value and gradient against float64 loops, at the default floor."""
    captured = np.load(Path(__file__).parent / 'data' / 'captured_toy_vrm_logits.npz',
                       allow_pickle=False)
    logits = [torch.from_numpy(captured[key]) for key in (
        'student_logits', 'student_virtual_logits', 'teacher_logits', 'teacher_virtual_logits')]
    assert_vrm_matches_float64(*logits, FLOOR)
