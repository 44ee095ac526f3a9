"""The four logit matrices of a distillation step, drawn or loaded, for the
loss benchmark and the exactness tests.

A distribution is named by a spec string:

* ``iid``: every entry of the four matrices drawn independently, N(0, 3^2);
* ``clustered:SHARE:SPREAD:GAP``: as a trained detector's RoI logits look: a
  ``SHARE`` of the rows (the background RoIs) lies in a tight cluster, within
  ``SPREAD`` (per entry) of one background prediction, the other rows are
  i.i.d.; each virtual row is its real row plus noise of ``GAP`` per entry
  (a photometric view barely moves a trained head). Student and teacher are
  drawn alike and independently;
* ``captured:PATH``: logits saved by ``tools/capture_logits.py`` from a
  training step of the toy VRM config (their own B and C).
"""
from typing import Dict, Optional

import torch
from torch import Tensor

LOGIT_SCALE = 3.0
#: The clustered settings (share, spread, gap) of the benchmark, loosest first.
CLUSTERED_SETTINGS = ((0.75, 0.05, 0.02), (0.75, 0.01, 0.005), (0.75, 0.002, 0.001),
                      (0.75, 0.0005, 0.0002))
KEYS = ('student_logits', 'student_virtual_logits', 'teacher_logits',
        'teacher_virtual_logits', 'labels')


def iid_logits(batch: int, num_classes: int, seed: int = 0) -> Dict[str, Tensor]:
    """Four independent (B, C) matrices of N(0, 3^2) entries and random labels."""
    gen = torch.Generator().manual_seed(seed)
    matrices = [LOGIT_SCALE * torch.randn(batch, num_classes, generator=gen) for _ in range(4)]
    labels = torch.randint(num_classes, (batch,), generator=gen)
    return dict(zip(KEYS, matrices + [labels]))


def clustered_logits(batch: int, num_classes: int, share: float, spread: float, gap: float,
                     seed: int = 0) -> Dict[str, Tensor]:
    """Logits with a background cluster and close real and virtual views.

    Args:
        batch (int): B, the number of rows (RoIs).
        num_classes (int): C; the last class is the background.
        share (float): Fraction of the rows in the cluster.
        spread (float): Standard deviation of a cluster row around the
            cluster's centre, per entry.
        gap (float): Standard deviation of a virtual row around its real
            row, per entry.
        seed (int): Seed of the draw.

    Returns:
        dict[str, Tensor]: The four (B, C) matrices and the (B,) labels
        (background for the cluster rows).
    """
    gen = torch.Generator().manual_seed(seed)
    in_cluster = torch.randperm(batch, generator=gen)[:round(share * batch)]
    matrices = []
    for _ in ('student', 'teacher'):
        real = LOGIT_SCALE * torch.randn(batch, num_classes, generator=gen)
        centre = LOGIT_SCALE * torch.randn(num_classes, generator=gen)
        real[in_cluster] = centre + spread * torch.randn(len(in_cluster), num_classes,
                                                         generator=gen)
        matrices += [real, real + gap * torch.randn(batch, num_classes, generator=gen)]
    labels = torch.randint(num_classes - 1, (batch,), generator=gen)
    labels[in_cluster] = num_classes - 1
    return dict(zip(KEYS, matrices + [labels]))


def captured_logits(path: str) -> Dict[str, Tensor]:
    """The matrices ``tools/capture_logits.py`` saved to ``path``."""
    captured = torch.load(path, map_location='cpu', weights_only=True)
    return {key: captured[key] for key in KEYS}


def distribution_logits(spec: str, batch: Optional[int] = None,
                        num_classes: Optional[int] = None, seed: int = 0) -> Dict[str, Tensor]:
    """The logits a distribution spec names (see the module docstring).

    ``batch`` and ``num_classes`` are ignored for captured logits.
    """
    kind, _, params = spec.partition(':')
    if kind == 'iid':
        return iid_logits(batch, num_classes, seed)
    if kind == 'clustered':
        share, spread, gap = (float(p) for p in params.split(':'))
        return clustered_logits(batch, num_classes, share, spread, gap, seed)
    if kind == 'captured':
        return captured_logits(params)
    raise ValueError(f'unknown distribution {spec!r}: iid, clustered:SHARE:SPREAD:GAP '
                     'or captured:PATH')


def loss_step(loss_fn, inputs: Dict[str, Tensor]):
    """One forward and backward of a distillation loss on the four logit
    matrices, the student's two as leaves, as the benchmarks time it.

    Args:
        loss_fn (callable): A vrm_det distillation loss module.
        inputs (dict[str, Tensor]): The four matrices and the labels
            (see :data:`KEYS`), on the device to measure.

    Returns:
        callable: The step; it leaves no gradient behind.
    """
    student = inputs['student_logits'].clone().requires_grad_(True)
    student_virtual = inputs['student_virtual_logits'].clone().requires_grad_(True)

    def step():
        losses = loss_fn(student, inputs['teacher_logits'], student_virtual,
                         inputs['teacher_virtual_logits'], inputs['labels'])
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        student.grad = student_virtual.grad = None

    return step
