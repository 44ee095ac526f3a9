from .demo import DemoSettings, run_demo
from .runner_config import (
    build_runner,
    check_data_paths,
    isolate_run,
    load_config,
    parse_runner_args,
    prepare_test_config,
    prepare_train_config,
    set_data_root,
    set_iterations,
)
from .runs import read_scalars, run_config, train_and_evaluate

__all__ = ['DemoSettings', 'run_demo', 'read_scalars', 'run_config', 'train_and_evaluate',
           'build_runner', 'check_data_paths', 'isolate_run', 'load_config',
           'parse_runner_args', 'prepare_train_config', 'prepare_test_config',
           'set_data_root', 'set_iterations']
