from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name):
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith('#')]


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
    install_requires=(read_requirements('torch.txt') + read_requirements('mmcv.txt')
                      + read_requirements('runtime.txt')),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
    classifiers=[
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
)
