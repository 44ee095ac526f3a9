"""Figures for reports: metrics over seeds, training curves, relation graphs (PNG, no display)."""
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from vrm_det.functional import (  # noqa: E402
    DEFAULT_EDGE_FLOOR,
    edge_matching_error_reference,
    joint_entropy,
    long_edge_mask,
    relation_floor,
    unreliable_edge_mask,
)


def plot_metric_spread(aps: Dict[str, Dict[int, float]], out_file: str,
                       ylabel: str = 'COCO AP (%)', teacher_value: Optional[float] = None) -> None:
    """A metric over seeds per arm: a bar at the mean, an error bar of one
    standard deviation, a dot per seed; the teacher's value as a dashed line.

    Args:
        aps (dict[str, dict[int, float]]): Arm -> seed -> value (in %).
        out_file (str): The PNG to write.
        ylabel (str): The metric's name.
        teacher_value (float, optional): The teacher's value (in %).
    """
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(aps)), 3.8))
    everything = [v for per_seed in aps.values() for v in per_seed.values()]
    if teacher_value is not None:
        everything.append(teacher_value)
    for i, per_seed in enumerate(aps.values()):
        values = torch.tensor([per_seed[s] for s in sorted(per_seed)], dtype=torch.float64)
        mean = values.mean().item()
        std = values.std().item() if len(values) > 1 else 0.0
        ax.bar(i, mean, 0.6, color=f'C{i}', alpha=0.45)
        ax.errorbar(i, mean, yerr=std, color='black', capsize=6, linewidth=1.2)
        ax.scatter([i] * len(values), values.tolist(), color='black', s=14, zorder=3)
        ax.annotate(f'{mean:.1f} ± {std:.1f}', (i, mean + std), textcoords='offset points',
                    xytext=(0, 4), ha='center', fontsize=7)
    if teacher_value is not None:
        ax.axhline(teacher_value, color='grey', linestyle='--', linewidth=1,
                   label=f"teacher {teacher_value:.1f}")
        ax.legend(fontsize=8, loc='lower right')
    # Zoomed to the values: differences of a point or two are what is compared.
    if everything:
        low, high = min(everything), max(everything)
        margin = max(1.0, 0.15 * (high - low))
        ax.set_ylim(max(0.0, low - 3 * margin), high + margin)
    labels = [arm.replace(' + ', '\n+ ').replace(' (', '\n(') for arm in aps]
    ax.set_xticks(range(len(aps)), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title('over seeds: mean ± std, a dot per seed', fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def plot_curves(curves: Dict[str, List[Tuple[int, float]]], out_file: str, ylabel: str,
                title: Optional[str] = None, smooth: int = 1,
                ylim: Optional[Tuple[float, float]] = None) -> None:
    """Line plot of (step, value) series, optionally with a moving average."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, points in curves.items():
        if not points:
            continue
        steps, values = zip(*points)
        if smooth > 1:
            windows = [values[max(0, i - smooth + 1):i + 1] for i in range(len(values))]
            values = [sum(window) / len(window) for window in windows]
        ax.plot(steps, values, label=name)
    ax.set_xlabel('iteration')
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)


def _relative_edge_lengths(real: Tensor, virtual: Tensor) -> Tensor:
    lengths = torch.cdist(real.double(), virtual.double())
    return lengths / lengths.mean().clamp_min(1e-12)


def plot_relation_graphs(student: Tensor, student_virtual: Tensor, teacher: Tensor,
                         teacher_virtual: Tensor, out_file: str, keep_percentile: float = 95.0,
                         max_vertices: int = 32, title: Optional[str] = None,
                         edge_floor: float = DEFAULT_EDGE_FLOOR,
                         short_edges: str = 'match') -> dict:
    """The inter-sample graphs of teacher and student side by side.

    Panels: the teacher's and the student's real -> virtual edge lengths
    (relative to their mean: which virtual samples lie close to which real
    ones), and the per-edge matching error ``|e_s - e_t|^2`` of the edges as
    the loss takes them (divided by ``max(|d|, floor)``, the floor from the
    whole batch's teacher logits), with the edges pruned for high joint
    entropy crossed out. At most
    ``max_vertices`` vertices are drawn; pruning is computed on the whole batch.

    Returns:
        dict: ``kept_fraction`` over the batch, ``unit_edge_share`` (of the
        edges the loss takes, those at least the floor long on both sides:
        matched as unit vectors, as the loss logs it) and the number of
        vertices drawn.
    """
    pruned = unreliable_edge_mask(joint_entropy(student, student_virtual), keep_percentile)
    floor = relation_floor(teacher, teacher_virtual, student.shape[1], edge_floor).double()
    teacher_long = long_edge_mask(teacher.double(), teacher_virtual.double(), floor)
    unit = long_edge_mask(student.double(), student_virtual.double(), floor) & teacher_long
    in_loss = ~pruned & teacher_long if short_edges == 'drop' and edge_floor else ~pruned
    unit_share = unit[in_loss].float().mean().item() if in_loss.any() else float('nan')
    n = min(max_vertices, student.shape[0])
    s, sv, t, tv = (x[:n].detach().double() for x in (student, student_virtual, teacher,
                                                       teacher_virtual))
    error = edge_matching_error_reference(s, sv, t, tv, s_floor=floor, t_floor=floor)
    panels = [(_relative_edge_lengths(t, tv), 'teacher: edge length / mean', 'viridis'),
              (_relative_edge_lengths(s, sv), 'student: edge length / mean', 'viridis'),
              (error, 'matching error |e_s - e_t|^2 (x: pruned)', 'magma')]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, (matrix, name, cmap) in zip(axes, panels):
        image = ax.imshow(matrix.numpy(), cmap=cmap)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel('virtual vertex j')
        ax.set_ylabel('real vertex i')
        fig.colorbar(image, ax=ax, fraction=0.046)
    rows, cols = pruned[:n, :n].nonzero(as_tuple=True)
    axes[2].scatter(cols.numpy(), rows.numpy(), marker='x', s=14, c='cyan', linewidths=0.8)
    kept = 1 - pruned.float().mean().item()
    fig.suptitle(title or f'inter-sample relation graphs, {n} of {student.shape[0]} vertices, '
                 f'{100 * kept:.1f}% of edges kept, {100 * unit_share:.1f}% of those '
                 'unit vectors on both sides', fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=120)
    plt.close(fig)
    return dict(kept_fraction=kept, unit_edge_share=unit_share, vertices_drawn=n)
