"""A short VRM training run as shipped (the toy config, its warm-up and
weights) keeps its gradient norm within a small factor of the student alone's.

The blow-up this guards against came from near-coincident real and virtual
predictions; the floor that bounds it is pinned exactly, on logits, in
test_vrm_functional.py (``test_near_coincident_views_give_bounded_row_gradients``).
Here the whole step is checked: weights, warm-up, both views, the detection
losses."""
import numpy as np
import pytest
from conftest import TOY_STUDENT, TOY_VRM, toy_config
from mmengine.runner import Runner

ITERS = 12


def grad_norms(cfg):
    """The pre-clipping gradient norm of every training iteration."""
    runner = Runner.from_cfg(cfg)
    runner.train()
    history = runner.message_hub.log_scalars['train/grad_norm'].data[0]
    assert len(history) == ITERS
    return np.asarray(history)


@pytest.fixture(scope='module')
def student_alone_norms(toy_data, tmp_path_factory):
    cfg = toy_config(TOY_STUDENT, toy_data, tmp_path_factory.mktemp('alone'), max_iters=ITERS)
    return grad_norms(cfg)


def test_vrm_gradient_norm_stays_within_a_small_factor_of_the_student_alone(
        student_alone_norms, toy_data, toy_teacher_ckpt, tmp_path):
    cfg = toy_config(TOY_VRM, toy_data, tmp_path, max_iters=ITERS, teacher_ckpt=toy_teacher_ckpt)
    vrm = grad_norms(cfg)
    assert np.isfinite(vrm).all()
    assert vrm.max() <= 3 * student_alone_norms.max(), (vrm, student_alone_norms)
