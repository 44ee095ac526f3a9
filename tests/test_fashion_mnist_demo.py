"""The classification demo on Fashion-MNIST: the data as mmpretrain's own
FashionMNIST dataset reads it (IDX files, written here in the released format),
and the multi-seed comparison end to end on a few images."""
import gzip
import os.path as osp
import struct

import numpy as np
import pytest

from vrm_det.apis.classification_demo import (
    ALONE,
    CONTROL,
    CONTROL_VRM,
    DIST,
    DKD,
    KD,
    VRM,
    ClassificationDemoSettings,
    run_classification_demo,
)
from vrm_det.datasets import FASHION_MNIST_FILES, prepare_fashion_mnist


def write_idx(path, array, compress):
    """An IDX file as the Fashion-MNIST release ships it: a big-endian magic
    (0, 0, type 0x08 = unsigned byte, number of dimensions), the dimensions,
    then the bytes."""
    header = struct.pack('>BBBB', 0, 0, 0x08, array.ndim) + struct.pack(
        f'>{array.ndim}I', *array.shape)
    opener = gzip.open if compress else open
    with opener(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def released_files(tmp_path_factory):
    """A gzipped release of 96 training and 40 test images: each class a
    different mean brightness, so a few iterations learn something."""
    folder = tmp_path_factory.mktemp('fashion_release')
    rng = np.random.default_rng(0)
    for split, count in (('train', 96), ('t10k', 40)):
        labels = np.arange(count) % 10
        images = np.clip(rng.normal(labels[:, None, None] * 25.0, 30.0, (count, 28, 28)), 0, 255)
        write_idx(folder / f'{split}-images-idx3-ubyte.gz', images, compress=True)
        write_idx(folder / f'{split}-labels-idx1-ubyte.gz', labels, compress=True)
    return folder


def test_prepare_reads_the_release_into_mmpretrains_layout(released_files, tmp_path):
    from mmpretrain.datasets import FashionMNIST
    root = str(tmp_path / 'fashion_mnist')
    assert prepare_fashion_mnist(root, sources=[str(released_files)]) == root
    assert all(osp.isfile(osp.join(root, name)) for name in FASHION_MNIST_FILES)
    train = FashionMNIST(data_root=root, test_mode=False, download=False)
    test = FashionMNIST(data_root=root, test_mode=True, download=False)
    assert (len(train), len(test)) == (96, 40)
    with gzip.open(released_files / 'train-images-idx3-ubyte.gz') as f:
        raw = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(96, 28, 28)
    assert np.array_equal(train.get_data_info(5)['img'], raw[5])
    assert int(train.get_data_info(7)['gt_label']) == 7
    # Already there: nothing is read from the (now empty) sources.
    assert prepare_fashion_mnist(root, sources=[]) == root


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install dataset-fashion-mnist'):
        prepare_fashion_mnist(str(tmp_path / 'none'), sources=[str(tmp_path / 'empty')])
    assert not osp.exists(tmp_path / 'none' / FASHION_MNIST_FILES[0])


@pytest.fixture(scope='module')
def demo(released_files, tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fashion') / 'fashion_mnist')
    prepare_fashion_mnist(root, sources=[str(released_files)])
    settings = ClassificationDemoSettings(
        work_dir=str(tmp_path_factory.mktemp('demo_cls')), data_root=root, seeds=(0, 1),
        jobs=2, teacher_iters=4, student_iters=3)
    return settings, run_classification_demo(settings)


def test_demo_trains_every_arm_with_every_seed_and_reports_the_spread(demo):
    settings, result = demo
    records = result['records']
    arms = [ALONE, CONTROL, KD, DKD, DIST, VRM, CONTROL_VRM]
    assert [(r['arm'], r['seed']) for r in records] == [(a, s) for s in (0, 1) for a in arms]
    for record in records:
        assert 0 <= record['top1'] <= 1
        # 40 test images: the accuracy is a whole number of them
        assert record['top1'] * 40 == pytest.approx(round(record['top1'] * 40), abs=1e-6)
    report = open(result['report']).read()
    for arm in arms:
        values = [100 * r['top1'] for r in records if r['arm'] == arm]
        assert f'| {arm} | {np.mean(values):.1f} ± {np.std(values, ddof=1):.1f} |' in report
    for name in ('accuracy.png', 'loss_curves.png', 'joint_entropy.png'):
        assert osp.getsize(osp.join(settings.work_dir, name)) > 5000 and name in report
    assert 0 <= result['teacher']['top1'] <= 1


def test_demo_distils_only_in_the_distillation_arms(demo):
    from vrm_det.apis import read_scalars
    _, result = demo
    series = {r['arm']: read_scalars(r['run_dir']) for r in result['records'] if r['seed'] == 0}
    assert [step for step, _ in series[VRM]['distill/kept_fraction']] == [1, 2, 3]
    # At the classification defaults every edge is a unit vector (the paper's loss).
    for arm in (VRM, CONTROL_VRM):
        for graph in ('sample', 'class'):
            shares = [v for _, v in series[arm][f'distill/unit_edge_share_{graph}']]
            assert len(shares) == 3 and min(shares) >= 0.99, (arm, graph, shares)
    for arm in (ALONE, CONTROL, KD, DKD, DIST):
        assert 'distill/kept_fraction' not in series[arm], arm
