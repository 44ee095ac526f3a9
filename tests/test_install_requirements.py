"""The installed vrm_det declares ranges, not pins, for the heavy stack.

`pip install vrm_det` into a user's working OpenMMLab environment must not replace
their torch or mm* packages: setup.py declares tested ranges (the exact pins in
requirements/ are for `make install` only). This reads the *installed*
distribution's metadata, so after editing setup.py reinstall it
(`pip install --no-deps --no-build-isolation -e .`, as the Makefile does).
"""
from importlib.metadata import PackageNotFoundError, requires, version

import pytest
from packaging.requirements import Requirement

HEAVY = ('torch', 'torchvision', 'mmcv', 'mmdet', 'mmengine', 'mmpretrain')
LOWER_BOUND_OPS = ('>=', '>', '~=')


def _normalize(name):
    return name.lower().replace('_', '-').replace('.', '-')


@pytest.fixture(scope='module')
def declared():
    try:
        lines = requires('vrm_det')
    except PackageNotFoundError:
        pytest.fail('vrm_det is not installed: run `make install`')
    reqs = [Requirement(line) for line in lines or []]
    # Only the unconditional requirements (extras such as [tests] carry a marker).
    return {_normalize(r.name): r for r in reqs if r.marker is None}


def test_heavy_stack_is_declared_as_ranges(declared):
    problems = []
    for name in HEAVY:
        req = declared.get(name)
        if req is None:
            problems.append(f'{name}: not declared')
            continue
        ops = [spec.operator for spec in req.specifier]
        if any(op in ('==', '===') for op in ops):
            problems.append(f'{name}: pinned ({req})')
        elif not any(op in LOWER_BOUND_OPS for op in ops):
            problems.append(f'{name}: no lower bound ({req})')
    assert not problems, 'install_requires must hold ranges: ' + '; '.join(problems)


def test_ranges_admit_this_environment(declared):
    outside = []
    for name, req in declared.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            assert name not in HEAVY, f'{name} is declared but not installed'
            continue
        if not req.specifier.contains(installed, prereleases=True):
            outside.append(f'{name} {installed} is outside {req}')
    assert not outside, '; '.join(outside)
