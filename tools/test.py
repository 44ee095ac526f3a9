"""Evaluate a checkpoint with the config's test evaluator (mmdet 3.x command line)."""
import argparse

import vrm_det  # noqa: F401  (registers the models, safe checkpoint loading)
from vrm_det.apis import build_runner, check_data_paths, parse_runner_args, prepare_test_config


def main():
    parser = argparse.ArgumentParser(description='Test a detector or a distiller')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='dump the raw predictions to this .pkl file')
    args = parse_runner_args(parser)
    cfg = prepare_test_config(args.config, args.checkpoint, args.work_dir, args.out,
                              args.cfg_options, args.launcher)
    check_data_paths(cfg, ('test_dataloader',))
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
