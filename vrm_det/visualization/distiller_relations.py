"""Relation graphs of a trained distiller on one batch of its training data."""
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from vrm_det.checkpoint import STUDENT_PREFIX, load_local_checkpoint
from vrm_det.models.distillers import capture_distill_inputs
from vrm_det.registry import MMDET_MODELS

from .plots import plot_relation_graphs


def plot_distiller_relations(cfg: Config, student_ckpt: str, out_file: str,
                             max_vertices: int = 32) -> dict:
    """Draw the teacher's and the student's inter-sample graphs for one batch.

    Args:
        cfg (Config): A distiller config whose loss uses the virtual view;
            ``model.teacher_ckpt`` must point at the teacher.
        student_ckpt (str): A distiller checkpoint, or a plain student one.
        out_file (str): The PNG to write.
        max_vertices (int): Vertices drawn (pruning uses the whole batch).

    Returns:
        dict: See :func:`~vrm_det.visualization.plot_relation_graphs`.
    """
    init_default_scope('mmdet')
    distiller = MMDET_MODELS.build(cfg.model)
    state = load_local_checkpoint(student_ckpt, map_location='cpu')
    state = state.get('state_dict', state)
    if any(key.startswith(STUDENT_PREFIX) for key in state):
        distiller.load_state_dict(state)
    else:
        distiller.student.load_state_dict(state)
    distiller.eval()
    batch = next(iter(Runner.build_dataloader(cfg.train_dataloader)))
    logits = capture_distill_inputs(distiller, batch)
    if 'student_virtual_logits' not in logits:
        raise ValueError(f'{type(distiller.distill_loss).__name__} does not use the virtual '
                         'view: there is no real -> virtual graph to draw; use a VRM config')
    return plot_relation_graphs(
        logits['student_logits'], logits['student_virtual_logits'], logits['teacher_logits'],
        logits['teacher_virtual_logits'], out_file,
        keep_percentile=distiller.distill_loss.options['keep_percentile'],
        edge_floor=distiller.distill_loss.options['edge_floor'],
        short_edges=distiller.distill_loss.options['short_edges'], max_vertices=max_vertices)
