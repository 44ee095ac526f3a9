"""Convert a torchvision ImageNet ResNet into an mmpretrain classifier checkpoint.

    python tools/convert_torchvision_teacher.py resnet34-b627a593.pth \\
        checkpoints/resnet34_imagenet.pth --arch ResNet34

The output loads into ``vrm_det.models.backbones.imagenet_classifier(arch)``.
"""
import argparse

from vrm_det.checkpoint_conversion import TORCHVISION_TEACHERS, convert_teacher_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help="torchvision state dict (e.g. resnet50-0676ba61.pth)")
    parser.add_argument('dst', help='where to write the classifier checkpoint')
    parser.add_argument('--arch', required=True, choices=TORCHVISION_TEACHERS.archs,
                        help='the teacher network')
    args = parser.parse_args()
    count = convert_teacher_file(args.src, args.dst, args.arch, TORCHVISION_TEACHERS)
    print(f'wrote {count} tensors of {args.arch} to {args.dst}')


if __name__ == '__main__':
    main()
