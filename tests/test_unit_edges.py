"""What the VRM loss computes at the shipped settings: the paper's unit edges
(classification), the detection stabiliser and the logged unit-edge share,
each checked against an independent float64 computation in numpy."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from vrm_det.functional import vrm_terms
from vrm_det.models.losses import VRMLoss
from vrm_det.registry import MMDET_MODELS

ROOT = Path(__file__).resolve().parents[1]
CLASSIFICATION_VRM = sorted(str(p) for p in (ROOT / 'configs' / 'classification' / 'vrm').glob(
    '*.py')) + [str(ROOT / 'configs' / 'fashion_mnist' / 'vrm_resnet20-resnet8_fashion-mnist.py')]
DETECTION_VRM = [str(ROOT / 'configs' / 'toy' / 'vrm_faster-rcnn_r18-w32-w8_fpn_toy.py')] + sorted(
    str(p) for p in (ROOT / 'configs' / 'vrm').glob('*.py'))


# -- independent computation (numpy, float64) --------------------------------

def np_entropy(x):
    z = x - x.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -(np.exp(log_p) * log_p).sum(1)


def np_kept(S, V, percentile):
    je = np_entropy(S)[:, None] + np_entropy(V)[None, :]
    k = round(percentile / 100 * je.size)
    return je <= (np.sort(je.ravel())[k - 1] if k else -np.inf)


def np_floor(T, W, edge_dim, relative):
    x = np.concatenate([T, W])
    return relative * math.sqrt(edge_dim) * np.sqrt(((x - x.mean(1, keepdims=True))**2).mean())


def np_graph(s_src, s_dst, t_src, t_dst, floor):
    """Per-edge error, student and teacher edge lengths, by explicit differences."""
    ds = s_src[:, None, :] - s_dst[None, :, :]
    dt = t_src[:, None, :] - t_dst[None, :, :]
    ls, lt = np.linalg.norm(ds, axis=-1), np.linalg.norm(dt, axis=-1)
    us = ds / np.maximum(ls, max(floor, 1e-12))[..., None]
    ut = dt / np.maximum(lt, max(floor, 1e-12))[..., None]
    return ((us - ut)**2).sum(-1), ls, lt


def np_vrm(S, V, T, W, percentile=95.0, relative_floor=0.0, short_edges='match'):
    """Both terms, both unit-edge shares and both dropped shares."""
    S, V, T, W = (np.asarray(x, dtype=np.float64) for x in (S, V, T, W))
    out = {}
    graphs = dict(sample=(S, V, T, W, np_kept(S, V, percentile)),
                  **{'class': (S.T, V.T, T.T, W.T, np.ones((S.shape[1],) * 2, bool))})
    for name, (s_src, s_dst, t_src, t_dst, selected) in graphs.items():
        floor = np_floor(T, W, s_src.shape[1], relative_floor)
        error, ls, lt = np_graph(s_src, s_dst, t_src, t_dst, floor)
        in_loss = selected & (lt >= floor) if short_edges == 'drop' and floor > 0 else selected
        out[name] = error[in_loss].mean() if in_loss.any() else 0.0
        unit = (ls >= floor) & (lt >= floor)
        out[f'unit_{name}'] = unit[in_loss].mean() if in_loss.any() else 0.0
        out[f'dropped_{name}'] = (selected & ~in_loss).sum() / selected.sum()
    return out


# -- logits that look like training --------------------------------------------

def trained_logits(batch, classes, scale, seed):
    """A trained model's logits: a margin on each sample's class plus noise,
    RMS (after row centring) about ``scale``; the virtual view moves them a little."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(classes, (batch,), generator=g)
    real = 3 * torch.nn.functional.one_hot(labels, classes).float() + torch.randn(
        batch, classes, generator=g)
    virtual = real + 0.7 * torch.randn(batch, classes, generator=g)
    rms = (real - real.mean(1, keepdim=True)).pow(2).mean().sqrt()
    return real * scale / rms, virtual * scale / rms


def untrained_logits(batch, classes, seed, scale=0.08):
    g = torch.Generator().manual_seed(seed)
    real = scale * torch.randn(batch, classes, generator=g)
    return real, real + 0.5 * scale * torch.randn(batch, classes, generator=g)


def loss_from_config(path):
    registry = MMPRETRAIN_MODELS if 'classification' in path or 'fashion' in path else MMDET_MODELS
    return registry.build(Config.fromfile(path).model.distill_loss)


# -- the classification defaults are the paper's loss --------------------------

@pytest.mark.parametrize('config', CLASSIFICATION_VRM, ids=lambda p: Path(p).stem)
@pytest.mark.parametrize('student', ['untrained', 'trained'])
def test_classification_configs_compute_the_papers_unit_edge_loss(config, student):
    """At the shipped classification settings the loss is the spec's unit-edge
    loss within 1%, for a fresh student (logit scale 0.08) and a trained one,
    with a trained teacher (scale 2 to 5). A floor relative to the teacher's
    scale would turn the untrained student's edges into raw differences."""
    loss = loss_from_config(config)
    assert isinstance(loss, VRMLoss)
    batch, classes = 64, 100
    for seed, teacher_scale in enumerate((2.0, 5.0)):
        T, W = trained_logits(batch, classes, teacher_scale, seed)
        S, V = (untrained_logits(batch, classes, seed + 10) if student == 'untrained'
                else trained_logits(batch, classes, 3.0, seed + 20))
        out = loss(S, T, V, W)
        want = np_vrm(S, V, T, W, loss.options['keep_percentile'])
        for graph, key in (('sample', 'vrm_sample_term'), ('class', 'vrm_class_term')):
            assert abs(out[key].item() - want[graph]) <= 0.01 * want[graph], (graph, out[key])
        assert out['unit_edge_share_sample'] >= 0.99 and out['unit_edge_share_class'] >= 0.99


# -- the detection stabiliser, pinned where configs build it ------------------

def collapsed_student(batch=96, classes=6, seed=0):
    """A collapsed detection head: every RoI scored nearly alike on both views,
    against a trained teacher whose background RoIs cluster too."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(classes, generator=g)
    S = centre + 1e-4 * torch.randn(batch, classes, generator=g)
    V = centre + 1e-4 * torch.randn(batch, classes, generator=g)
    T, W = trained_logits(batch, classes, 3.0, seed)
    return S, V, T, W


@pytest.mark.parametrize('config', DETECTION_VRM, ids=lambda p: Path(p).stem)
def test_detection_configs_bound_the_gradient_of_a_collapsed_student(config):
    """Unit edges between near-identical RoI predictions have a Jacobian of
    1 / |d|: on a collapsed head the paper's loss sends a gradient about
    10^4 times a healthy head's (the divergence seen on the single-class set).
    The detection configs' stabiliser keeps it within 10 times. Fails when the
    configs' floor is removed."""
    loss = loss_from_config(config)

    def grad_norm(S, V, T, W):
        S, V = S.clone().requires_grad_(), V.clone().requires_grad_()
        out = loss(S, T, V, W)
        (out['loss_vrm_sample'] + out['loss_vrm_class']).backward()
        return torch.cat([S.grad, V.grad]).norm().item()

    S, V, T, W = collapsed_student()
    healthy = grad_norm(*trained_logits(96, 6, 3.0, 1), T, W)
    collapsed = grad_norm(S, V, T, W)
    assert math.isfinite(collapsed) and collapsed <= 10 * healthy, (collapsed, healthy)


# -- the logged unit-edge share and the short-edge modes -----------------------

@pytest.mark.parametrize('relative_floor', [0.0, 0.05, 0.5])
@pytest.mark.parametrize('short_edges', ['match', 'drop'])
def test_terms_and_unit_edge_share_match_numpy(relative_floor, short_edges):
    """Captured-like inputs where a share of the edges lie under the floor:
    a background cluster (rows within 0.05 of each other) and virtual rows
    close to their real rows."""
    g = torch.Generator().manual_seed(3)
    B, C = 40, 6
    S, V = trained_logits(B, C, 1.0, 4)
    T, W = trained_logits(B, C, 3.0, 5)
    for x in (S, V, T, W):
        x[:16] = x[0] + 0.05 * torch.randn(16, C, generator=g)
    terms = vrm_terms(S, V, T, W, keep_percentile=90, edge_floor=relative_floor,
                      short_edges=short_edges)
    want = np_vrm(S, V, T, W, 90, relative_floor, short_edges)
    for graph, term in (('sample', terms.inter_sample), ('class', terms.inter_class)):
        assert abs(term.item() - want[graph]) <= 1e-4 * want[graph]
    assert terms.unit_edge_share_sample.item() == pytest.approx(want['unit_sample'], abs=1e-6)
    assert terms.unit_edge_share_class.item() == pytest.approx(want['unit_class'], abs=1e-6)
    assert terms.short_dropped_sample.item() == pytest.approx(want['dropped_sample'], abs=1e-6)
    assert terms.short_dropped_class.item() == pytest.approx(want['dropped_class'], abs=1e-6)
    if relative_floor == 0.5:  # the inputs do exercise the floor
        assert 0.05 < want['unit_sample'] < 0.95
        assert (want['dropped_sample'] > 0.05) == (short_edges == 'drop')
    if relative_floor == 0:
        assert want['unit_sample'] == 1.0 and want['unit_class'] == 1.0


def test_vrm_loss_logs_the_unit_edge_share_and_dropped_share():
    S, V = trained_logits(32, 6, 1.0, 0)
    T, W = trained_logits(32, 6, 3.0, 1)
    S[:12] = S[0]
    out = VRMLoss(edge_floor=0.5, short_edges='drop')(S, T, V, W)
    want = np_vrm(S, V, T, W, 95, 0.5, 'drop')
    assert out['unit_edge_share_sample'].item() == pytest.approx(want['unit_sample'], abs=1e-6)
    assert out['short_dropped_share_class'].item() == pytest.approx(want['dropped_class'],
                                                                    abs=1e-6)
    assert 'short_dropped_share_sample' not in VRMLoss()(S, T, V, W)


def test_vrm_loss_default_is_the_papers_loss():
    """The module every config builds: without options it computes unit edges."""
    S, V = untrained_logits(48, 10, 0)
    T, W = trained_logits(48, 10, 3.0, 1)
    out = VRMLoss()(S, T, V, W)
    want = np_vrm(S, V, T, W, 95)
    assert abs(out['vrm_sample_term'].item() - want['sample']) <= 1e-4 * want['sample']
    assert out['unit_edge_share_sample'] == 1 and out['unit_edge_share_class'] == 1


def test_unit_edge_share_without_a_floor_is_one_for_near_coincident_views():
    """Views 1e-4 apart: the expanded lengths round to nothing, yet these
    edges are unit vectors in the loss, and the logged share says so."""
    g = torch.Generator().manual_seed(0)
    S, _ = trained_logits(64, 81, 3.0, 0)
    T, _ = trained_logits(64, 81, 3.0, 1)
    S[:48] = S[0] + 0.01 * torch.randn(48, 81, generator=g)  # a background cluster
    V = S + 1e-4 * torch.randn(64, 81, generator=g)
    W = T + 1e-4 * torch.randn(64, 81, generator=g)
    terms = vrm_terms(S, V, T, W, keep_percentile=100)
    assert terms.unit_edge_share_sample.item() == 1.0
    assert terms.unit_edge_share_class.item() == 1.0


def test_nothing_to_measure_logs_no_unit_edge_share():
    one = torch.randn(1, 5)
    out = VRMLoss()(one, one, one, one)
    assert 'unit_edge_share_sample' not in out and 'unit_edge_share_class' not in out


@pytest.mark.parametrize('options, match', [
    (dict(short_edges='drop'), 'set edge_floor > 0'),
    (dict(relation='gram', edge_floor=0.5), "relation='gram' compares cosines"),
])
def test_options_that_would_do_nothing_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        VRMLoss(**options)
