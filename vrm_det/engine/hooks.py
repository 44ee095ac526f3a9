"""Hooks for distillation runs."""
from typing import Optional, Sequence

from mmengine.hooks import Hook

# mmengine's root registry: every scope (mmdet, mmpretrain, a user's own) finds
# the hooks through its parent.
from mmengine.registry import HOOKS

VRM_STATISTICS = ('loss_vrm_sample', 'loss_vrm_class', 'vrm_sample_term', 'vrm_class_term',
                  'kept_fraction', 'joint_entropy', 'joint_entropy_threshold',
                  'pruned_foreground_share', 'unit_edge_share_sample', 'unit_edge_share_class',
                  'short_dropped_share_sample', 'short_dropped_share_class',
                  'distill_grad_norm', 'distill_skipped_steps')


@HOOKS.register_module()
class DistillStatsHook(Hook):
    """Write the distillation statistics of every ``interval``-th iteration to
    the visualizer, under ``distill/``.

    ``distill_grad_norm`` is the norm of the gradient the distillation loss
    sends to the student's logits (written by the distiller during the
    backward pass); ``distill_skipped_steps`` counts the steps whose
    distillation loss was skipped for non-finite logits under mixed precision.

    The runner's logger already averages every loss-dict entry over its window;
    this hook records the per-iteration values (the kept-edge fraction changes
    every step) to each of the visualizer's backends: ``vis_data/scalars.json``
    locally, and TensorBoard or others when configured in ``vis_backends``.

    Args:
        interval (int): Record every this many iterations.
        keys (Sequence[str]): Loss-dict entries to record; those absent (for
            a loss that does not produce them) are skipped.
    """
    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 1, keys: Sequence[str] = VRM_STATISTICS) -> None:
        if interval < 1:
            raise ValueError(f'interval={interval} must be at least 1')
        self.interval, self.keys = interval, tuple(keys)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        # Only what this iteration produced: a statistic absent this step
        # (nothing pruned, a skipped step) must not repeat an old value.
        hub = runner.message_hub
        fresh = set(outputs or ())
        if hub.get_info('distill_grad_norm_iter') == runner.iter:
            fresh.add('distill_grad_norm')
        values = {f'distill/{key}': hub.log_scalars[f'train/{key}'].current()
                  for key in self.keys if key in fresh and f'train/{key}' in hub.log_scalars}
        if values:
            runner.visualizer.add_scalars(values, step=runner.iter + 1)


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A terminal progress bar over the training iterations (tqdm).

    Args:
        desc (str): Label shown before the bar.
        loss_key (str): Loss-dict entry shown beside the bar.
        position (int): Terminal line of the bar, for runs trained side by
            side in several processes (0: the current line).
    """
    priority = 'LOWEST'

    def __init__(self, desc: str = 'train', loss_key: str = 'loss', position: int = 0) -> None:
        self.desc, self.loss_key, self.position = desc, loss_key, position
        self._bar = None

    def before_train(self, runner) -> None:
        from tqdm import tqdm
        self._bar = tqdm(total=runner.max_iters, initial=runner.iter, desc=self.desc,
                         unit='it', dynamic_ncols=True, position=self.position,
                         leave=self.position == 0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        self._bar.update(1)
        if outputs and self.loss_key in outputs:
            value = outputs[self.loss_key].detach().item()
            self._bar.set_postfix({self.loss_key: f'{value:.3f}'})

    def after_train(self, runner) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
