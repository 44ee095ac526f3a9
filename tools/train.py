"""Train a detector or a distiller from a config (mmdet 3.x command line)."""
import argparse

import vrm_det  # noqa: F401  (registers the models, safe checkpoint loading)
from vrm_det.apis import build_runner, check_data_paths, parse_runner_args, prepare_train_config


def main():
    parser = argparse.ArgumentParser(description='Train a detector or a distiller')
    parser.add_argument('config', help='config file')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on GPU, bfloat16 on CPU')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from this checkpoint, or without a value from the '
                        'latest complete checkpoint in the work dir')
    args = parse_runner_args(parser)
    cfg = prepare_train_config(args.config, args.work_dir, args.amp, args.resume,
                               args.cfg_options, args.launcher)
    check_data_paths(cfg)
    build_runner(cfg).train()


if __name__ == '__main__':
    main()
