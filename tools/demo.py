"""The main job on an embedded default: toy COCO, a teacher, a student three ways.

    python tools/demo.py                                   # the toy default (make demo)
    python tools/demo.py --data-root data/my_coco \\
        --teacher-config T.py --student-config S.py --kd-config K.py --vrm-config V.py
"""
import argparse
import warnings

# setuptools < 81 (needed to build mmcv) warns on every import of mmengine's dependencies.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from vrm_det.apis import DemoSettings, run_demo  # noqa: E402


def main():
    defaults = DemoSettings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--work-dir', default=defaults.work_dir)
    parser.add_argument('--data-root', help='a COCO-format dataset (annotations/'
                        'instances_{train,val}.json) instead of the generated toy one')
    parser.add_argument('--teacher-config', default=defaults.teacher_config)
    parser.add_argument('--student-config', default=defaults.student_config)
    parser.add_argument('--kd-config', default=defaults.kd_config)
    parser.add_argument('--vrm-config', default=defaults.vrm_config)
    parser.add_argument('--teacher-iters', type=int, help="default: the config's schedule")
    parser.add_argument('--student-iters', type=int, help="default: the config's schedule")
    parser.add_argument('--retrain-teacher', action='store_true',
                        help='train the teacher again instead of reusing it')
    parser.add_argument('--seed', type=int, default=defaults.seed)
    args = parser.parse_args()
    run_demo(DemoSettings(**{k: v for k, v in vars(args).items() if v is not None}))


if __name__ == '__main__':
    main()
