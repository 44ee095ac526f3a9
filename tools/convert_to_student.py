"""Extract the student from a distiller checkpoint.

The output loads with the student's own config, e.g. with mmdet's test tool:

    python tools/convert_to_student.py work_dirs/vrm_.../iter_N.pth student.pth
    python tools/test.py configs/students/faster-rcnn_r18_fpn_1x_coco.py student.pth
"""
import argparse

from vrm_det.checkpoint import save_student_checkpoint


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='checkpoint written while training a distiller')
    parser.add_argument('dst', help='where to write the student checkpoint')
    args = parser.parse_args()
    count = save_student_checkpoint(args.src, args.dst)
    print(f'wrote {count} student tensors to {args.dst}')


if __name__ == '__main__':
    main()
