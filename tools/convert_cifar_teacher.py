"""Convert a CIFAR-100 teacher of the KD benchmark into an mmpretrain classifier checkpoint.

The teachers are the files of the ``cifar_teachers.tar`` release
(``<arch>_vanilla/ckpt_epoch_240.pth``); ``--arch`` is the folder name without
``_vanilla``:

    python tools/convert_cifar_teacher.py \\
        download_ckpts/cifar_teachers/resnet32x4_vanilla/ckpt_epoch_240.pth \\
        checkpoints/resnet32x4_cifar100.pth --arch resnet32x4

The output loads into ``vrm_det.models.backbones.cifar_classifier(arch)``.
"""
import argparse

from vrm_det.checkpoint_conversion import CIFAR_TEACHERS, convert_teacher_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='released teacher checkpoint (ckpt_epoch_240.pth)')
    parser.add_argument('dst', help='where to write the classifier checkpoint')
    parser.add_argument('--arch', required=True, choices=CIFAR_TEACHERS.archs,
                        help='the teacher network')
    args = parser.parse_args()
    count = convert_teacher_file(args.src, args.dst, args.arch, CIFAR_TEACHERS)
    print(f'wrote {count} tensors of {args.arch} to {args.dst}')


if __name__ == '__main__':
    main()
