from .demo import DemoSettings, run_demo
from .runner_config import (
    add_runner_arguments,
    build_runner,
    isolate_run,
    load_config,
    prepare_test_config,
    prepare_train_config,
    set_data_root,
    set_iterations,
)

__all__ = ['DemoSettings', 'run_demo', 'add_runner_arguments', 'build_runner', 'isolate_run',
           'load_config', 'prepare_train_config', 'prepare_test_config', 'set_data_root',
           'set_iterations']
