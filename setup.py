import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

# What `pip install vrm_det` asks of an environment: the tested ranges. The exact
# pins in requirements/*.txt are what `make install` builds and tests; here each
# pinned package is replaced by its range, so that installing vrm_det into a working
# OpenMMLab environment keeps that environment's torch, mmcv and mm* packages.
# Lower bounds are the tested pins; upper bounds only where an API is known to break.
RANGES = {
    # No upper bound: torch 2.14's headers need C++20, which breaks the *source build*
    # of mmcv 2.1.0, not vrm_det and not an mmcv already built against it. A cap
    # would make pip downgrade (replace) a user's newer torch, the thing to avoid.
    'torch': 'torch>=2.13',
    'torchvision': 'torchvision>=0.28',  # follows torch
    'mmcv': 'mmcv>=2.0.0,<2.2.0',  # mmdet 3.3 asserts mmcv<2.2.0 at import
    'mmdet': 'mmdet>=3.3.0,<3.4',  # vrm_det subclasses mmdet 3.3's detector internals
    'mmengine': 'mmengine>=0.10.7',  # no release known to break the runner, hooks or registry
    'mmpretrain': 'mmpretrain>=1.2.0,<1.3',  # vrm_det subclasses mmpretrain 1.2's classifier
    'pycocotools': 'pycocotools>=2.0',  # stable API across 2.0.x
}


def read_requirements(name):
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


def install_requires():
    """The requirement files with each exact pin replaced by its range in RANGES."""
    requires = []
    for line in (read_requirements('torch.txt') + read_requirements('mmcv.txt')
                 + read_requirements('runtime.txt')):
        name = re.split(r'[\s<>=!~;\[]', line, maxsplit=1)[0].lower()
        if name in RANGES:
            requires.append(RANGES[name])
        elif '==' in line:
            raise ValueError(f'{line!r} is pinned in requirements/: add its range to RANGES '
                             'in setup.py')
        else:
            requires.append(line)  # already a range (numpy) or unpinned (small deps)
    return requires


version = {}
exec((HERE / 'vrm_det' / 'version.py').read_text(), version)

setup(
    name='vrm_det',
    version=version['__version__'],
    description='Virtual relation matching (VRM) knowledge distillation for OpenMMLab '
    'detectors and classifiers',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['vrm_det', 'vrm_det.*']),
    python_requires='>=3.10',
    install_requires=install_requires(),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
