"""The main job on an embedded default: toy COCO, a teacher, and one student
trained alone, with the virtual view (control), with VRM and with control + VRM, over seeds.

    python tools/demo.py                          # the toy default (make demo): 3 seeds
    python tools/demo.py --seeds 0                # a quick look: one seed
    python tools/demo.py --all-baselines          # KD, DKD and DIST arms too
    python tools/demo.py --view geometric         # the geometric virtual view
    python tools/demo.py --data-root data/my_coco --teacher-config T.py \\
        --student-config S.py --control-config C.py --kd-config K.py --vrm-config V.py
"""
import argparse
import warnings

# setuptools < 81 (needed to build mmcv) warns on every import of mmengine's dependencies.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from vrm_det.apis import DemoSettings, run_demo  # noqa: E402
from vrm_det.apis.demo import VIEW_CONFIGS  # noqa: E402
from vrm_det.apis.seed_comparison import add_comparison_arguments  # noqa: E402


def main():
    defaults = DemoSettings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    add_comparison_arguments(parser, defaults)
    parser.add_argument('--data-root', help='a COCO-format dataset (annotations/'
                        'instances_{train,val}.json) instead of the generated toy one')
    parser.add_argument('--view', choices=sorted(VIEW_CONFIGS), default=defaults.view,
                        help="the control and VRM arms' virtual view: photometric (made in "
                        'the model) or geometric (RandAugment with rotations, shears and '
                        'translations in the pipeline, RoIs projected into it)')
    for arm in ('student', 'control', 'kd', 'vrm', 'control_vrm', 'dkd', 'dist'):
        # None: the default, for the control and VRM arms the view's config
        parser.add_argument(f'--{arm}-config')
    parser.add_argument('--all-baselines', action='store_true',
                        help='also train the KD, DKD and DIST arms')
    args = parser.parse_args()
    run_demo(DemoSettings(**{k: v for k, v in vars(args).items() if v is not None}))


if __name__ == '__main__':
    main()
