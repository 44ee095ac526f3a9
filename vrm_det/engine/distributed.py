"""Multi-process training: one process per GPU (nccl) or several CPU
processes (gloo) on machines without a GPU."""
import os
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel


@MODEL_WRAPPERS.register_module()
class DistillerDataParallel(MMDistributedDataParallel):
    """mmengine's ``MMDistributedDataParallel`` that also tells a distiller
    the optimizer wrapper's loss scale each step.

    The wrapper runs the training step itself, so the module's own
    ``train_step`` (where a distiller reads the scale to unscale the logged
    gradient norm) is bypassed; this calls the module's
    ``record_loss_scale(optim_wrapper)`` when it has one. Models without it
    train as under ``MMDistributedDataParallel``.
    """

    def train_step(self, data, optim_wrapper):
        record_loss_scale = getattr(self.module, 'record_loss_scale', None)
        if record_loss_scale is not None:
            record_loss_scale(optim_wrapper)
        return super().train_step(data, optim_wrapper)


def setup_distributed(cfg: Config) -> Config:
    """Prepare a launched run (``cfg.launcher != 'none'``) for its device.

    Sets the model wrapper to :class:`DistillerDataParallel` unless the config
    chooses one. Without CUDA it also starts the gloo process group here:
    mmengine's launcher binds each rank to a GPU before it starts the group,
    which fails without a driver; started here, the runner finds the group
    and skips that step. The wrapper then takes no device ids (CPU modules).

    Args:
        cfg (Config): A config whose ``launcher`` is ``'pytorch'`` (torchrun
            sets ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``).

    Returns:
        Config: ``cfg``, changed in place.
    """
    if cfg.get('launcher', 'none') == 'none':
        return cfg
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='DistillerDataParallel',
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    if torch.cuda.is_available():
        return cfg
    if cfg.launcher != 'pytorch':
        raise ValueError(f'launcher {cfg.launcher!r} without a GPU: CPU training with '
                         'several processes is launched by torchrun (tools/dist_train.sh)')
    wrapper = MODEL_WRAPPERS.get(cfg.model_wrapper_cfg.get('type', 'MMDistributedDataParallel'))
    if wrapper is not None and issubclass(wrapper, DistributedDataParallel):
        cfg.model_wrapper_cfg.device_ids = None
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=timedelta(seconds=dist_cfg.get('timeout', 1800)))
    return cfg
