"""The relation math imports and runs with torch alone (no OpenMMLab packages)."""
import subprocess
import sys
from pathlib import Path

BLOCK_OPENMMLAB = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('mmdet', 'mmengine', 'mmpretrain', 'mmcv'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name.split('.')[0])
sys.meta_path.insert(0, Block())
import torch
import vrm_det
from vrm_det.functional import vrm_terms
assert not vrm_det.OPENMMLAB_AVAILABLE
x = [torch.randn(8, 5) for _ in range(4)]
print(float(vrm_terms(*x).inter_sample))
assert not any(m.split('.')[0] in ('mmdet', 'mmengine') for m in sys.modules)
'''


def test_functional_needs_only_torch():
    done = subprocess.run([sys.executable, '-c', BLOCK_OPENMMLAB], capture_output=True,
                          text=True, cwd=str(Path(__file__).parents[1]), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) > 0
