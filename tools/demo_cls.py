"""The classification demo on real data: Fashion-MNIST, a resnet20 teacher, and
a resnet8 student trained alone, on the virtual view (control), with KD, DKD,
DIST and VRM, over seeds.

    python tools/demo_cls.py                 # make demo-cls: 3 seeds
    python tools/demo_cls.py --seeds 0       # a quick look: one seed

The data: Debian/Ubuntu `apt-get install dataset-fashion-mnist` (read from
/usr/share/datasets/fashion-mnist), or the four IDX files in --data-root.
"""
import argparse
import warnings

# setuptools < 81 (needed to build mmcv) warns on every import of mmengine's dependencies.
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)
# mmpretrain's IDX reader wraps a read-only buffer; the images are only read.
warnings.filterwarnings('ignore', message='The given NumPy array is not writable')

from vrm_det.apis.classification_demo import (  # noqa: E402
    ClassificationDemoSettings,
    run_classification_demo,
)
from vrm_det.apis.seed_comparison import add_comparison_arguments  # noqa: E402


def main():
    defaults = ClassificationDemoSettings()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    add_comparison_arguments(parser, defaults)
    parser.add_argument('--data-root', default=defaults.data_root,
                        help='the four Fashion-MNIST IDX files, uncompressed')
    args = parser.parse_args()
    try:
        run_classification_demo(ClassificationDemoSettings(
            **{k: v for k, v in vars(args).items() if v is not None}))
    except FileNotFoundError as error:
        raise SystemExit(f'demo-cls: {error}') from None


if __name__ == '__main__':
    main()
