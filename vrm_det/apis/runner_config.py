"""Turning a config file and command-line options into a runner config.

Shared by ``tools/train.py`` and ``tools/test.py``; follows mmdet 3.x's
conventions (work_dirs/<config name>, ``--cfg-options``, ``--amp``,
``--resume``).
"""
import os.path as osp
import time
from typing import Optional

from mmengine.config import Config

from vrm_det.checkpoint import is_complete_checkpoint, latest_complete_checkpoint
from vrm_det.engine import setup_distributed


def load_config(path: str, cfg_options: Optional[dict] = None,
                launcher: str = 'none') -> Config:
    """Read a config file, merge ``--cfg-options`` and set the launcher."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.launcher = launcher
    return cfg


def _set_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> None:
    # Priority: command line > config file > work_dirs/<config name>.
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def prepare_train_config(config_path: str, work_dir: Optional[str] = None,
                         amp: bool = False, resume: Optional[str] = None,
                         cfg_options: Optional[dict] = None,
                         launcher: str = 'none') -> Config:
    """Config for training, with crash-safe checkpoints that keep the random
    streams (:class:`SafeCheckpointHook`, :class:`RandomStateHook`).

    Args:
        config_path (str): The config file.
        work_dir (str, optional): Where logs and checkpoints go.
        amp (bool): Train with automatic mixed precision.
        resume (str, optional): ``'auto'`` resumes from the latest complete
            checkpoint in the work dir; a path resumes from that checkpoint.
        cfg_options (dict, optional): Overrides, as ``--cfg-options`` gives them.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    cfg = load_config(config_path, cfg_options, launcher)
    _set_work_dir(cfg, config_path, work_dir)
    if amp:
        _use_mixed_precision(cfg)
    _use_safe_checkpoints(cfg)
    if resume == 'auto':
        # The newest *complete* checkpoint: a save cut off by a crash is skipped.
        found = latest_complete_checkpoint(cfg.work_dir)
        pointer = osp.join(cfg.work_dir, 'last_checkpoint')
        if found is None and osp.isfile(pointer):
            raise FileNotFoundError(
                f'--resume: {pointer} names a checkpoint, but no checkpoint in {cfg.work_dir} '
                'is complete (cut off while being written?). Remove last_checkpoint to '
                'train from the beginning, or pass --resume PATH')
        # None: nothing saved yet, mmengine starts from the beginning.
        cfg.resume, cfg.load_from = True, found
    elif resume is not None:
        if not osp.isfile(resume):
            raise FileNotFoundError(f'--resume checkpoint {resume} does not exist')
        if not is_complete_checkpoint(resume):
            raise ValueError(f'--resume checkpoint {resume} is incomplete (cut off while being '
                             'written?): pass an earlier checkpoint, or --resume without a '
                             'value to take the latest complete one')
        cfg.resume, cfg.load_from = True, resume
    return cfg


def _use_mixed_precision(cfg: Config) -> None:
    """Train with :class:`MixedPrecisionOptimWrapper` (float16 on GPU,
    bfloat16 on CPU)."""
    optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper', 'MixedPrecisionOptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper type OptimWrapper or AmpOptimWrapper, '
                         f'the config has {optim_wrapper}')
    cfg.optim_wrapper.type = 'MixedPrecisionOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def _use_safe_checkpoints(cfg: Config) -> None:
    """Save with :class:`SafeCheckpointHook` and keep the random streams in
    every checkpoint (:class:`RandomStateHook`)."""
    checkpoint = cfg.get('default_hooks', {}).get('checkpoint')
    if checkpoint is not None and checkpoint.get('type') == 'CheckpointHook':
        checkpoint.type = 'SafeCheckpointHook'
    hooks = list(cfg.get('custom_hooks', []))
    if not any(hook.get('type') == 'RandomStateHook' for hook in hooks):
        hooks.append(dict(type='RandomStateHook'))
    cfg.custom_hooks = hooks


def check_data_paths(cfg: Config, dataloaders=('train_dataloader', 'val_dataloader')) -> None:
    """Raise if an annotation file the config names does not exist.

    Without this the run builds its model and fails later, deep in the
    dataset, with a bare path.

    Raises:
        FileNotFoundError: Naming the file, the ``data_root`` and the fix.
    """
    for key in dataloaders:
        loader = cfg.get(key)
        dataset = None if loader is None else loader.get('dataset')
        while dataset is not None and 'ann_file' not in dataset and 'dataset' in dataset:
            dataset = dataset.dataset  # wrappers such as RepeatDataset
        if not dataset or not dataset.get('ann_file'):
            continue
        data_root = dataset.get('data_root') or ''
        ann_file = osp.join(data_root, dataset.ann_file)
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'{key}: annotation file {ann_file} does not exist (data_root '
                f'{data_root or "not set"}). Put the dataset there (see docs/user_guide.md, '
                'COCO data layout) or point the config at it: --cfg-options '
                f'{key}.dataset.data_root=DIR/')


def prepare_test_config(config_path: str, checkpoint: str, work_dir: Optional[str] = None,
                        out: Optional[str] = None, cfg_options: Optional[dict] = None,
                        launcher: str = 'none') -> Config:
    """Config for testing ``checkpoint``; ``out`` dumps the raw predictions."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    cfg = load_config(config_path, cfg_options, launcher)
    _set_work_dir(cfg, config_path, work_dir)
    cfg.load_from = checkpoint
    if out is not None:
        if not out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl file, got {out}')
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=out))
    return cfg


def set_data_root(cfg: Config, data_root: str) -> Config:
    """Point a COCO-style config's dataloaders and evaluators at ``data_root``.

    ``data_root`` holds ``annotations/instances_{train,val}.json`` and the
    image folders the config names (mmdet's COCO layout).
    """
    data_root = data_root.rstrip('/') + '/'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key) is not None:
            cfg[key].dataset.data_root = data_root
    for key in ('val_evaluator', 'test_evaluator'):
        evaluator = cfg.get(key)
        if evaluator is not None and 'ann_file' in evaluator:
            evaluator.ann_file = osp.join(data_root, 'annotations',
                                          osp.basename(evaluator.ann_file))
    return cfg


def set_iterations(cfg: Config, max_iters: int) -> Config:
    """Shorten or lengthen an iteration-based schedule; validate and save at the end."""
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = max_iters
    cfg.default_hooks.checkpoint.interval = max_iters
    for scheduler in cfg.get('param_scheduler', []):
        if scheduler.get('type') == 'MultiStepLR':
            scheduler.end = max_iters
            scheduler.milestones = [int(max_iters * 0.75)]
        elif 'end' in scheduler:
            scheduler.end = min(scheduler.end, max(1, max_iters // 10))
    return cfg


def isolate_run(cfg: Config, label: str) -> Config:
    """Give a run its own MessageHub and Visualizer inside a shared process.

    mmengine keeps both as named singletons: a second runner built in the same
    process (or the same second) reuses the first one's, and its logs and
    scalars land in the first run's directory. Unique names keep them apart.
    """
    unique = f'{label}-{time.time_ns()}'
    cfg.experiment_name = unique
    if cfg.get('visualizer') is not None:
        cfg.visualizer.name = unique
    return cfg


def parse_runner_args(parser):
    """Add the options ``tools/train.py`` and ``tools/test.py`` share, parse the
    command line, and set ``LOCAL_RANK`` for launchers that pass it only as an
    argument."""
    import os

    from mmengine.config import DictAction

    parser.add_argument('--work-dir', help='where logs, checkpoints and results go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_runner(cfg: Config):
    """The runner a config asks for (``runner_type``), mmengine's by default;
    for a launched run, the process group and model wrapper its device needs
    (:func:`vrm_det.engine.setup_distributed`)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    setup_distributed(cfg)

    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
