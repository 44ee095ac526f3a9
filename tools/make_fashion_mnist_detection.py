"""Write the Fashion-MNIST detection dataset: canvases of several real item images.

Reads the four Fashion-MNIST IDX files from --fashion-mnist (unpacked there from
Debian's dataset-fashion-mnist package, /usr/share/datasets/fashion-mnist, when
missing)."""
import argparse
import sys

from tqdm import tqdm

from vrm_det.datasets.fashion_mnist_detection import make_fashion_mnist_detection


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/fashion_mnist_det', help='destination folder')
    parser.add_argument('--fashion-mnist', default='data/fashion_mnist',
                        help='folder of the uncompressed Fashion-MNIST IDX files')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--num-items', type=int, nargs=2, default=(2, 5), metavar=('MIN', 'MAX'),
                        help='items per canvas')
    parser.add_argument('--item-size', type=int, nargs=2, default=(24, 56),
                        metavar=('MIN', 'MAX'), help='side of a resized item, in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true', help='replace an existing dataset')
    args = parser.parse_args()
    bars = {}

    def progress(split, done, total):
        bar = bars.setdefault(split, tqdm(total=total, desc=f'fashion-mnist det {split}',
                                          unit='img'))
        bar.update(done - bar.n)

    try:
        paths = make_fashion_mnist_detection(
            args.out, args.fashion_mnist, args.num_train, args.num_val, args.image_size,
            args.seed, args.overwrite, progress, args.num_items, args.item_size)
    except FileNotFoundError as error:
        sys.exit(f'error: {error}')
    finally:
        for bar in bars.values():
            bar.close()
    print(f"Fashion-MNIST detection set at {args.out}: {paths['train']}, {paths['val']}")


if __name__ == '__main__':
    main()
