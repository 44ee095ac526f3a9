"""Fashion-MNIST (Xiao et al., 2017: 60,000 training and 10,000 test photographs
of clothing, 28 x 28 grey levels, 10 classes) laid out as mmpretrain's
``FashionMNIST`` dataset reads it: the four IDX files, uncompressed, in one
folder."""
import gzip
import os
import os.path as osp
import shutil
import tempfile
from typing import Sequence

#: The files mmpretrain's FashionMNIST reads (its ``train_list`` / ``test_list``
#: without the ``.gz`` suffix).
FASHION_MNIST_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
                       't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped files.
DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist'


def _has_all(folder: str, suffix: str = '') -> bool:
    return all(osp.isfile(osp.join(folder, name + suffix)) for name in FASHION_MNIST_FILES)


def prepare_fashion_mnist(data_root: str = 'data/fashion_mnist',
                          sources: Sequence[str] = (DEBIAN_FASHION_MNIST,)) -> str:
    """Make ``data_root`` hold the four uncompressed IDX files.

    Nothing is done when they are there already. Otherwise the first source
    folder holding all four (gzipped as released, or uncompressed) is copied
    in; the files appear only once all four are written.

    Returns:
        str: ``data_root``.

    Raises:
        FileNotFoundError: No source holds the files; the message says how to
            get them.
    """
    if _has_all(data_root):
        return data_root
    for source in sources:
        for suffix in ('.gz', ''):
            if _has_all(source, suffix):
                _copy_all(source, suffix, data_root)
                return data_root
    raise FileNotFoundError(
        f'Fashion-MNIST is not in {data_root} nor in {", ".join(sources)}. Get it with one of: '
        '`apt-get install dataset-fashion-mnist` (Debian/Ubuntu; files go to '
        f'{DEBIAN_FASHION_MNIST}); or download the four files {", ".join(FASHION_MNIST_FILES)} '
        f'(.gz) from the Fashion-MNIST release into {data_root}; or let mmpretrain download '
        "them: set download=True on the FashionMNIST dataset in the config.")


def _copy_all(source: str, suffix: str, data_root: str) -> None:
    os.makedirs(data_root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix='.fashion_mnist-', dir=data_root)
    try:
        for name in FASHION_MNIST_FILES:
            opener = gzip.open if suffix == '.gz' else open
            with opener(osp.join(source, name + suffix), 'rb') as src, \
                    open(osp.join(staging, name), 'wb') as dst:
                shutil.copyfileobj(src, dst)
        for name in FASHION_MNIST_FILES:
            os.replace(osp.join(staging, name), osp.join(data_root, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
