"""The registered loss modules: one signature, validated options, checked inputs."""
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from vrm_det.functional import vrm_terms
from vrm_det.models.losses import DISTLoss, DKDLoss, GramRelationLoss, KDLoss, RKDLoss, VRMLoss

ALL_LOSSES = ['VRMLoss', 'KDLoss', 'DKDLoss', 'DISTLoss', 'RKDLoss', 'GramRelationLoss']


def logits(batch=12, classes=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, classes, generator=g) for _ in range(4)] + [
        torch.randint(classes, (batch,), generator=g)]


@pytest.mark.parametrize('name', ALL_LOSSES)
def test_every_loss_builds_from_both_registries_and_shares_one_signature(name):
    for registry in (MMDET_MODELS, MMPRETRAIN_MODELS):
        loss = registry.build(dict(type=name))
        S, V, T, W, labels = logits()
        S.requires_grad_(True)
        out = loss(S, T, student_virtual_logits=V, teacher_virtual_logits=W, labels=labels)
        total = sum(v for k, v in out.items() if 'loss' in k)
        total.backward()
        assert S.grad.abs().sum() > 0
        assert all(not v.requires_grad for k, v in out.items() if 'loss' not in k)


def test_vrm_loss_weights_the_functional_terms():
    S, V, T, W, _ = logits()
    out = VRMLoss(alpha=3.0, beta=5.0, keep_percentile=80)(S, T, V, W)
    terms = vrm_terms(S, V, T, W, keep_percentile=80)
    torch.testing.assert_close(out['loss_vrm_sample'], 3.0 * terms.inter_sample)
    torch.testing.assert_close(out['loss_vrm_class'], 5.0 * terms.inter_class)
    torch.testing.assert_close(out['kept_fraction'], terms.kept_fraction)
    assert set(out) == {'loss_vrm_sample', 'loss_vrm_class', 'vrm_sample_term',
                        'vrm_class_term', 'kept_fraction', 'joint_entropy',
                        'joint_entropy_threshold', 'unit_edge_share_sample',
                        'unit_edge_share_class'}
    torch.testing.assert_close(out['unit_edge_share_sample'], terms.unit_edge_share_sample)


def test_pruning_statistics_match_a_numpy_computation():
    """The threshold is the largest kept joint entropy; the foreground share
    counts the labels at both endpoints of every pruned edge."""
    S, V, T, W, _ = logits(batch=20, classes=4)
    labels = torch.tensor([3, 0, 1, 3, 3, 2, 3, 3, 0, 3] * 2)  # background is 3
    loss = VRMLoss(keep_percentile=70)
    loss.background_label = 3
    out = loss(S, T, V, W, labels=labels)

    def entropy(x):
        p = np.exp(x - x.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return -(p * np.log(p)).sum(1)
    je = entropy(S.double().numpy())[:, None] + entropy(V.double().numpy())[None, :]
    k = round(0.7 * je.size)
    threshold = np.sort(je.ravel())[k - 1]
    assert out['joint_entropy_threshold'].item() == pytest.approx(threshold, rel=1e-5)
    rows, cols = np.nonzero(je > threshold)
    endpoints = np.concatenate([labels.numpy()[rows], labels.numpy()[cols]])
    assert out['pruned_foreground_share'].item() == pytest.approx((endpoints != 3).mean())
    assert 'pruned_foreground_share' not in VRMLoss(keep_percentile=70)(S, T, V, W, labels=labels)


def test_vrm_kd_term_is_off_by_default_and_averages_both_views():
    S, V, T, W, _ = logits()
    assert 'loss_kd' not in VRMLoss()(S, T, V, W)
    out = VRMLoss(kd_weight=2.0, kd_temperature=1.0)(S, T, V, W)
    want = (KDLoss(temperature=1.0)(S, T)['loss_kd'] + KDLoss(temperature=1.0)(V, W)['loss_kd'])
    torch.testing.assert_close(out['loss_kd'], want)


def test_auto_impl_picks_fused_for_l2_vectors_and_reference_otherwise():
    assert VRMLoss().impl == 'fused'
    assert VRMLoss(loss='huber').impl == 'reference'
    assert VRMLoss(relation='gram').impl == 'reference'
    S, V, T, W, _ = logits()
    fused, reference = VRMLoss(impl='fused')(S, T, V, W), VRMLoss(impl='reference')(S, T, V, W)
    torch.testing.assert_close(fused['loss_vrm_sample'], reference['loss_vrm_sample'])
    torch.testing.assert_close(fused['loss_vrm_class'], reference['loss_vrm_class'])


@pytest.mark.parametrize('kwargs, words', [
    (dict(joint_entropy='joint'), ["joint_entropy='joint'", "'sum'", "'cross'"]),
    (dict(ic_edges='full'), ["ic_edges='full'", "'cross'", "'concat'"]),
    (dict(relation='matrix'), ["relation='matrix'", "'vector'", "'gram'"]),
    (dict(loss='l1'), ["loss='l1'", "'l2'", "'huber'"]),
    (dict(impl='fast'), ["impl='fast'", "'auto'", "'fused'", "'reference'"]),
    (dict(keep_percentile=120), ['keep_percentile=120', '[0, 100]']),
    (dict(impl='fused', loss='huber'), ["impl='fused'", "impl='reference'"]),
    (dict(chunk_size=0), ['chunk_size=0']),
])
def test_bad_options_fail_at_build_time_naming_value_and_choices(kwargs, words):
    with pytest.raises(ValueError) as error:
        MMDET_MODELS.build(dict(type='VRMLoss', **kwargs))
    for word in words:
        assert word in str(error.value)


def test_config_typo_fails_at_build_time():
    with pytest.raises(TypeError, match='prune_percentil'):
        MMDET_MODELS.build(dict(type='VRMLoss', prune_percentil=90))


def test_mismatched_class_counts_name_the_problem():
    S, V, T, W, _ = logits()
    with pytest.raises(ValueError, match='class counts differ'):
        VRMLoss()(S, T[:, :5], V, W)


@pytest.mark.parametrize('position, name', [(0, 'student_logits'), (1, 'teacher_logits'),
                                            (2, 'student_virtual_logits'),
                                            (3, 'teacher_virtual_logits')])
def test_non_finite_logits_raise_naming_the_tensor(position, name):
    inputs = logits()[:4]
    inputs[position][3, 2] = float('nan')
    with pytest.raises(ValueError, match=f'^{name} contains NaN or inf'):
        VRMLoss()(inputs[0], inputs[1], inputs[2], inputs[3])


def test_vrm_without_virtual_view_and_dkd_without_labels_are_clear_errors():
    S, V, T, W, _ = logits()
    with pytest.raises(ValueError, match='virtual view'):
        VRMLoss()(S, T)
    with pytest.raises(ValueError, match='labels'):
        DKDLoss()(S, T)


@pytest.mark.parametrize('loss', [VRMLoss(), KDLoss(), DKDLoss(), DISTLoss(), RKDLoss(),
                                  GramRelationLoss()])
def test_empty_batch_gives_connected_zero(loss):
    S, V, T, W, labels = [x[:0] for x in logits()]
    S.requires_grad_(True)
    out = loss(S, T, V, W, labels)
    total = sum(v for k, v in out.items() if 'loss' in k)
    assert total.item() == 0
    total.backward()
    assert S.grad.shape == (0, 7)


def test_baselines_declare_that_they_ignore_the_virtual_view():
    S, V, T, W, labels = logits()
    for loss in (KDLoss(), DKDLoss(), DISTLoss(), RKDLoss(), GramRelationLoss()):
        assert not loss.uses_virtual_view
        with_virtual = loss(S, T, V, W, labels)
        without = loss(S, T, labels=labels)
        for key in with_virtual:
            torch.testing.assert_close(with_virtual[key], without[key])
    assert VRMLoss.uses_virtual_view


def test_half_precision_logits_are_computed_in_float32():
    S, V, T, W, _ = logits()
    half = [x.half() for x in (S, T, V, W)]
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = VRMLoss()(*half)
    want = VRMLoss()(*[x.float() for x in half])
    assert out['loss_vrm_sample'].dtype == torch.float32
    torch.testing.assert_close(out['loss_vrm_sample'], want['loss_vrm_sample'])
    torch.testing.assert_close(out['loss_vrm_class'], want['loss_vrm_class'])
