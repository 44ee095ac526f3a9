"""Write the toy COCO-format detection dataset (generated images, no download)."""
import argparse

from tqdm import tqdm

from vrm_det.datasets import make_toy_coco
from vrm_det.datasets.toy_coco import TOY_CLASSES


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/toy_coco', help='destination folder')
    parser.add_argument('--num-train', type=int, default=240)
    parser.add_argument('--num-val', type=int, default=60)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--classes', nargs='+', default=list(TOY_CLASSES), choices=TOY_CLASSES,
                        help='shape classes to draw (one makes a single-class dataset)')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing dataset')
    args = parser.parse_args()
    bars = {}

    def progress(split, done, total):
        bar = bars.setdefault(split, tqdm(total=total, desc=f'toy coco {split}', unit='img'))
        bar.update(done - bar.n)

    paths = make_toy_coco(args.out, args.num_train, args.num_val, args.image_size, args.seed,
                          args.overwrite, progress, args.classes)
    for bar in bars.values():
        bar.close()
    print(f"toy COCO at {args.out}: {paths['train']}, {paths['val']}")


if __name__ == '__main__':
    main()
