from .checkpoint_hooks import (
    AtomicLocalBackend,
    RandomStateHook,
    SafeCheckpointHook,
    capture_random_states,
    restore_random_states,
)
from .distributed import DistillerDataParallel, setup_distributed
from .hooks import DistillStatsHook, ProgressBarHook
from .mixed_precision import MixedPrecisionOptimWrapper

__all__ = ['AtomicLocalBackend', 'DistillStatsHook', 'DistillerDataParallel',
           'MixedPrecisionOptimWrapper', 'ProgressBarHook', 'RandomStateHook',
           'SafeCheckpointHook', 'capture_random_states', 'restore_random_states',
           'setup_distributed']
