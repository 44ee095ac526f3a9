"""Train a detector or a distiller from a config (mmdet 3.x command line)."""
import argparse
import logging
import os
import sys

import torch.distributed as torch_dist

import vrm_det  # noqa: F401  (registers the models, safe checkpoint loading)
from vrm_det.apis import build_runner, check_data_paths, parse_runner_args, prepare_train_config
from vrm_det.checkpoint import latest_complete_checkpoint


def main():
    parser = argparse.ArgumentParser(description='Train a detector or a distiller')
    parser.add_argument('config', help='config file')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on GPU, bfloat16 on CPU')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from this checkpoint, or without a value from the '
                        'latest complete checkpoint in the work dir')
    args = parse_runner_args(parser)
    # torchrun numbers the attempts of its process group: above 0, it restarted
    # the group after losing a process (--max-restarts; MAX_RESTARTS in
    # tools/dist_train.sh), and the run goes on from the latest complete checkpoint
    # (from the beginning when none is saved yet).
    restart = int(os.environ.get('TORCHELASTIC_RESTART_COUNT', '0'))
    resume = 'auto' if restart > 0 and args.resume is None else args.resume
    cfg = prepare_train_config(args.config, args.work_dir, args.amp, resume,
                               args.cfg_options, args.launcher)
    if restart > 0 and args.resume not in (None, 'auto'):
        # Started by --resume PATH: what the run saved since then is further on.
        cfg.load_from = latest_complete_checkpoint(cfg.work_dir) or cfg.load_from
    check_data_paths(cfg)
    runner = build_runner(cfg)
    if restart > 0:
        runner.logger.warning(
            f'torchrun restart {restart} of at most '
            f'{os.environ.get("TORCHELASTIC_MAX_RESTARTS", "?")} after a lost process: '
            f'resuming from {cfg.load_from or "the beginning (no complete checkpoint yet)"}')
    runner.train()
    # Left to the interpreter's exit, gloo's threads can abort the process ('terminate
    # called without an active exception', SIGABRT; pytorch/pytorch#190489): torchrun
    # would take a finished run for a lost process. Only after a run that finished:
    # with a rank lost mid-collective, destroying the group could wait for it.
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
        # The abort can still come from the interpreter's own teardown after a
        # restarted group: the run is complete (checkpoints written, logs flushed
        # here), so the process leaves without that teardown, with success.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == '__main__':
    main()
