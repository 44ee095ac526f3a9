"""Evaluate a checkpoint with the config's test evaluator (mmdet 3.x command line)."""
import argparse
import os

import vrm_det  # noqa: F401  (registers the models, safe checkpoint loading)
from vrm_det.apis import add_runner_arguments, build_runner, prepare_test_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test a detector or a distiller')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this .pkl file')
    add_runner_arguments(parser)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = prepare_test_config(args.config, args.checkpoint, args.work_dir, args.out,
                              args.cfg_options, args.launcher)
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
