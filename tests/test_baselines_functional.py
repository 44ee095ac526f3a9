"""Each baseline against a computation written out with numpy loops."""
import numpy as np
import pytest
import torch

from vrm_det.functional import (
    dist_divergence,
    dkd_divergence,
    gram_relation_divergence,
    kd_divergence,
    rkd_divergence,
)

RNG = np.random.default_rng(7)
STUDENT = RNG.normal(size=(6, 5)) * 2
TEACHER = RNG.normal(size=(6, 5)) * 2
LABELS = np.array([0, 4, 2, 2, 1, 3])


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def tensors():
    return torch.tensor(STUDENT, dtype=torch.float32), torch.tensor(TEACHER, dtype=torch.float32)


def smooth_l1(a, b):
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d**2, d - 0.5).mean()


def test_kd_matches_numpy():
    tau = 3.0
    total = 0.0
    for s, t in zip(STUDENT, TEACHER):
        p, q = softmax(t / tau), softmax(s / tau)
        total += sum(p[c] * np.log(p[c] / q[c]) for c in range(5))
    want = total / 6 * tau**2
    assert kd_divergence(*tensors(), temperature=tau).item() == pytest.approx(want, rel=1e-5)


def test_dkd_matches_numpy():
    tau, alpha, beta = 2.0, 1.5, 6.0
    total = 0.0
    for s, t, y in zip(STUDENT, TEACHER, LABELS):
        ps, pt = softmax(s / tau), softmax(t / tau)
        bs, bt = np.array([ps[y], 1 - ps[y]]), np.array([pt[y], 1 - pt[y]])
        tckd = (bt * np.log(bt / bs)).sum()
        others = [c for c in range(5) if c != y]
        qs, qt = softmax(s[others] / tau), softmax(t[others] / tau)
        nckd = (qt * np.log(qt / qs)).sum()
        total += alpha * tckd + beta * nckd
    want = total / 6 * tau**2
    got = dkd_divergence(*tensors(), torch.tensor(LABELS), alpha, beta, tau)
    assert got.item() == pytest.approx(want, rel=1e-5)


def dkd_float64(student, teacher, labels, alpha, beta, tau):
    """DKD's published formula in float64 torch: binary (target, rest)
    distributions and the distribution among the non-target classes."""
    total = 0
    for s, t, y in zip(student, teacher, labels):
        ps, pt = torch.softmax(s / tau, 0), torch.softmax(t / tau, 0)
        others = [c for c in range(len(s)) if c != y]
        bs = torch.stack([ps[y], ps[others].sum()])
        bt = torch.stack([pt[y], pt[others].sum()])
        tckd = (bt * (bt.log() - bs.log())).sum()
        qs, qt = torch.softmax(s[others] / tau, 0), torch.softmax(t[others] / tau, 0)
        nckd = (qt * (qt.log() - qs.log())).sum()
        total = total + alpha * tckd + beta * nckd
    return total / len(labels) * tau**2


@pytest.mark.parametrize('case', ['target_below_1e-12', 'complement_below_1e-12'])
def test_dkd_on_extreme_logits_matches_float64_in_value_and_gradient(case):
    """Confident rows: a target probability, or its complement, below 1e-12.
    The binary term must keep its value and gradient in float32."""
    g = torch.Generator().manual_seed(0)
    student = torch.randn(4, 6, generator=g, dtype=torch.float64)
    teacher = torch.randn(4, 6, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 3, 5, 1])
    rows = torch.arange(4)
    if case == 'target_below_1e-12':
        student[rows, labels] -= 32  # p_target ~ 1e-14
        teacher[rows, labels] -= 20
    else:
        student[rows, labels] += 32  # 1 - p_target ~ 1e-14
        teacher[rows, labels] += 25
    s32 = student.float().requires_grad_()
    got = dkd_divergence(s32, teacher.float(), labels, 1.0, 0.25, 1.0)
    got.backward()
    s64 = student.clone().requires_grad_()
    want = dkd_float64(s64, teacher, labels, 1.0, 0.25, 1.0)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-4)
    torch.testing.assert_close(s32.grad.double(), s64.grad, rtol=1e-3, atol=1e-12)


def test_dist_adds_its_epsilon_to_the_norms_like_its_authors_code():
    """A near-constant class column: the correlation is ``<a, b> / (|a||b| + 1e-8)``."""
    # Class 2 has probabilities ~1e-4 varying by ~1e-4: the product of its
    # centred norms is ~1e-8, where adding and clamping the epsilon differ.
    student = torch.tensor([[1.0, 0.0, -8.0], [0.0, 1.0, -9.0], [0.5, 0.5, -7.5]])
    teacher = torch.tensor([[1.0, 0.2, -8.5], [0.1, 1.0, -8.0], [0.6, 0.4, -7.0]])
    ps = torch.softmax(student.double(), 1).numpy()
    pt = torch.softmax(teacher.double(), 1).numpy()

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        return (a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-8)
    intra = np.mean([1 - pearson(ps[:, c], pt[:, c]) for c in range(3)])
    got = dist_divergence(student, teacher, inter_weight=0.0, intra_weight=1.0)
    assert got.item() == pytest.approx(intra, rel=1e-5)


def test_dist_matches_numpy():
    tau = 2.0
    ps, pt = softmax(STUDENT / tau), softmax(TEACHER / tau)
    inter = np.mean([1 - np.corrcoef(ps[i], pt[i])[0, 1] for i in range(6)])
    intra = np.mean([1 - np.corrcoef(ps[:, c], pt[:, c])[0, 1] for c in range(5)])
    want = tau**2 * (0.5 * inter + 2.0 * intra)
    got = dist_divergence(*tensors(), inter_weight=0.5, intra_weight=2.0, temperature=tau)
    assert got.item() == pytest.approx(want, rel=1e-5)


def rkd_potentials(x):
    n = len(x)
    dist = np.array([[np.linalg.norm(x[i] - x[j]) for j in range(n)] for i in range(n)])
    dist = dist / (dist.sum() / (n * n - n))
    angle = np.zeros((n, n, n))
    for i in range(n):
        for j in range(n):
            for k in range(n):
                a, b = x[j] - x[i], x[k] - x[i]
                na, nb = np.linalg.norm(a), np.linalg.norm(b)
                if na > 0 and nb > 0:
                    angle[i, j, k] = a @ b / (na * nb)
    return dist, angle


def test_rkd_matches_numpy():
    ds, angle_s = rkd_potentials(STUDENT)
    dt, angle_t = rkd_potentials(TEACHER)
    want = 25 * smooth_l1(ds, dt) + 50 * smooth_l1(angle_s, angle_t)
    assert rkd_divergence(*tensors()).item() == pytest.approx(want, rel=1e-5)


def test_gram_relation_matches_numpy():
    def gram(x):
        return np.array([[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in x] for a in x])

    want = ((gram(STUDENT) - gram(TEACHER))**2).mean()
    assert gram_relation_divergence(*tensors()).item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize('fn, batch', [
    (kd_divergence, 0), (dist_divergence, 0), (dist_divergence, 1), (rkd_divergence, 0),
    (rkd_divergence, 1), (gram_relation_divergence, 0), (gram_relation_divergence, 1)])
def test_degenerate_batches_give_connected_zero(fn, batch):
    # Relations need two samples; KD matches instances and is zero only when empty.
    s, t = tensors()
    s = s[:batch].requires_grad_(True)
    value = fn(s, t[:batch])
    assert value.item() == 0 and value.requires_grad
    value.backward()
    assert torch.isfinite(s.grad).all()


def test_identical_rows_give_finite_values():
    s = torch.ones(4, 3, requires_grad=True)
    for fn in (kd_divergence, dist_divergence, rkd_divergence, gram_relation_divergence):
        value = fn(s, torch.ones(4, 3))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(s.grad).all(), fn.__name__


def test_rkd_angle_term_in_blocks_equals_the_whole_tensor(monkeypatch):
    """Blocks of anchors (recomputed in backward) give the value and gradient
    of the (B, B, B) computation."""
    from vrm_det.functional import rkd
    g = torch.Generator().manual_seed(0)
    student = torch.randn(9, 4, generator=g, requires_grad=True)
    teacher = torch.randn(9, 4, generator=g)
    whole = torch.nn.functional.smooth_l1_loss(rkd._angles(student), rkd._angles(teacher))
    whole_grad, = torch.autograd.grad(whole, student)
    monkeypatch.setattr(rkd, '_ANGLE_BLOCK_FLOATS', 2 * 9 * 9)  # blocks of 2 anchors
    blocked = rkd.angle_loss(student, teacher)
    blocked_grad, = torch.autograd.grad(blocked, student)
    torch.testing.assert_close(blocked, whole)
    torch.testing.assert_close(blocked_grad, whole_grad)


def kd_float64(student, teacher, tau):
    log_p_s = torch.log_softmax(student / tau, 1)
    log_p_t = torch.log_softmax(teacher / tau, 1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(1).mean() * tau**2


def dist_float64(student, teacher, tau):
    """DIST's published formula: 1 - Pearson correlation of the probabilities,
    per row (inter-class) and per column (intra-class), epsilon added to the
    product of norms as in its authors' code."""
    def one_minus_pearson(a, b):
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return 1 - (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)
    p_s, p_t = torch.softmax(student / tau, 1), torch.softmax(teacher / tau, 1)
    inter = one_minus_pearson(p_s, p_t).mean()
    intra = one_minus_pearson(p_s.T, p_t.T).mean()
    return tau**2 * (inter + intra)


@pytest.mark.parametrize('case', ['target_below_1e-12', 'complement_below_1e-12'])
@pytest.mark.parametrize('name', ['kd', 'dist'])
def test_kd_and_dist_on_extreme_logits_match_float64(name, case):
    g = torch.Generator().manual_seed(1)
    student = torch.randn(5, 6, generator=g, dtype=torch.float64)
    teacher = torch.randn(5, 6, generator=g, dtype=torch.float64)
    rows, labels = torch.arange(5), torch.tensor([0, 2, 5, 1, 3])
    shift = -30 if case == 'target_below_1e-12' else 30
    student[rows, labels] += shift
    teacher[rows, labels] += shift * 0.8
    ours = dict(kd=lambda s, t: kd_divergence(s, t, temperature=1.0),
                dist=lambda s, t: dist_divergence(s, t, temperature=1.0))[name]
    reference = dict(kd=kd_float64, dist=dist_float64)[name]
    s32 = student.float().requires_grad_()
    got = ours(s32, teacher.float())
    got.backward()
    s64 = student.clone().requires_grad_()
    want = reference(s64, teacher, 1.0)
    want.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-4, abs=1e-7)
    torch.testing.assert_close(s32.grad.double(), s64.grad, rtol=1e-3, atol=1e-9)
