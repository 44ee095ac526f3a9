"""A geometric virtual view for detection, made by the data pipeline.

mmdet's train pipeline gives every image two branches (``MultiBranch``): the
real view (what the student trains on: resized, flipped), and the virtual
view, the real view passed through ``RandAugment`` whose geometric operations
(``Rotate``, ``ShearX/Y``, ``TranslateX/Y``) move the objects. Each branch
records the ``homography_matrix`` from the loaded image to itself, so the map
from the real view to the virtual one is ``H_virtual @ inv(H_real)``. A RoI of
the real view is carried into the virtual image with mmdet's ``bbox_project``
(the axis-aligned box around its projected corners) and clipped to the virtual
image; a RoI whose projection mostly leaves the image is dropped from both
graphs.
"""
from typing import List, NamedTuple, Sequence, Tuple

import torch
from mmdet.structures.bbox import bbox_project
from torch import Tensor

from vrm_det.registry import register_model

from .pipeline import PipelineView

#: The branch names the train pipeline's ``MultiBranch`` must use.
REAL_BRANCH, VIRTUAL_BRANCH = 'real', 'virtual'


@register_model
class DetectionPipelineView(PipelineView):
    """Marks a detection distiller whose virtual view comes with the batch.

    The train pipeline ends with ``dict(type='MultiBranch',
    branch_field=['real', 'virtual'], real=[pack], virtual=[dict(type=
    'RandAugment', ...), pack])`` where ``pack`` is ``PackDetInputs`` with
    ``'homography_matrix'`` among its ``meta_keys``. The student's RoIs are
    projected into each virtual image (see :func:`project_rois`).

    Args:
        min_inside (float): A RoI stays a vertex when at least this share of
            its projected box's area lies inside the virtual image; the
            others are dropped from both graphs (and from the virtual
            detection losses).
    """

    def __init__(self, min_inside: float = 0.5) -> None:
        super().__init__()
        if not 0 < min_inside <= 1:
            raise ValueError(f'min_inside={min_inside} must lie in (0, 1]: the share of a '
                             "projected RoI's area that must stay inside the virtual image")
        self.min_inside = min_inside

    def forward(self, images: Tensor) -> Tensor:
        raise RuntimeError(
            'DetectionPipelineView makes no view itself: the train pipeline gives each image '
            "two branches. End train_pipeline with dict(type='MultiBranch', branch_field="
            "['real', 'virtual'], real=[pack], virtual=[dict(type='RandAugment', ...), pack]) "
            "where pack = dict(type='PackDetInputs', meta_keys=(..., 'homography_matrix')); "
            '(two_view_branches in configs/_base_/geometric_virtual_view.py)')


def _homography(sample, branch: str) -> Tensor:
    matrix = sample.metainfo.get('homography_matrix')
    if matrix is None:  # unprojected RoIs would silently miss the objects
        raise KeyError(
            f"the {branch} view's sample has no homography_matrix: resize with mmdet's "
            "Resize before MultiBranch (it records one) and pack it in both branches, "
            "dict(type='PackDetInputs', meta_keys=(..., 'homography_matrix')) "
            '(two_view_meta_keys in configs/_base_/geometric_virtual_view.py)')
    return torch.as_tensor(matrix, dtype=torch.float64).reshape(3, 3)


def real_to_virtual_homographies(real_samples: Sequence, virtual_samples: Sequence) -> Tensor:
    """The map from each real image to its virtual one.

    Args:
        real_samples (Sequence[DetDataSample]): The real branch's samples.
        virtual_samples (Sequence[DetDataSample]): The virtual branch's, in
            the same order.

    Returns:
        Tensor: Shape (N, 3, 3), float64: ``H_virtual @ inv(H_real)``, where
        each branch's ``homography_matrix`` maps the loaded image to it.
    """
    if len(real_samples) != len(virtual_samples):
        raise ValueError(f'{len(real_samples)} real and {len(virtual_samples)} virtual '
                         'samples: the two branches must hold the same images')
    matrices = []
    for real, virtual in zip(real_samples, virtual_samples):
        if real.metainfo.get('img_id') != virtual.metainfo.get('img_id'):
            raise ValueError(f"the branches are out of order: real image "
                             f"{real.metainfo.get('img_id')} against virtual image "
                             f"{virtual.metainfo.get('img_id')}")
        matrices.append(_homography(virtual, VIRTUAL_BRANCH)
                        @ torch.linalg.inv(_homography(real, REAL_BRANCH)))
    return torch.stack(matrices)


class ProjectedRoIs(NamedTuple):
    """RoIs of the real view carried into the virtual images."""

    #: Shape (R, 5): batch index, x1, y1, x2, y2 in the virtual image, clipped.
    rois: Tensor
    #: Shape (R,), bool: the RoIs that stay vertices (enough area inside).
    kept: Tensor


def project_boxes(boxes: Tensor, homography: Tensor, image_size: Tuple[int, int]
                  ) -> Tuple[Tensor, Tensor]:
    """Boxes of one image carried through ``homography`` and clipped.

    Args:
        boxes (Tensor): Shape (n, 4), x1 y1 x2 y2.
        homography (Tensor): Shape (3, 3).
        image_size (tuple): ``(height, width)`` of the target image's valid
            region (mmdet's ``img_shape``).

    Returns:
        tuple: The clipped boxes, shape (n, 4), in ``boxes``' dtype, and the
        share of each projected box's area inside the image, shape (n,).
    """
    projected = bbox_project(boxes.detach().double(), homography.to(boxes.device))
    clipped = projected.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(0, image_size[1])
    clipped[:, 1::2] = clipped[:, 1::2].clamp(0, image_size[0])

    def area(b: Tensor) -> Tensor:
        return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)

    inside = area(clipped) / area(projected).clamp(min=1e-12)
    return clipped.to(boxes.dtype), inside


def project_rois(rois: Tensor, homographies: Tensor, image_sizes: Sequence[Tuple[int, int]],
                 min_inside: float) -> ProjectedRoIs:
    """Carry the real view's RoIs into the virtual images.

    Args:
        rois (Tensor): Shape (R, 5): batch index, x1, y1, x2, y2 (mmdet's
            ``bbox2roi`` layout).
        homographies (Tensor): Shape (N, 3, 3), real image to virtual image.
        image_sizes (Sequence[tuple]): ``(height, width)`` of each virtual
            image's valid region.
        min_inside (float): The share of a projected box's area that must
            lie inside the image for the RoI to stay a vertex.

    Returns:
        ProjectedRoIs: Rows aligned one to one with ``rois``.
    """
    projected = rois.clone()
    kept = torch.zeros(len(rois), dtype=torch.bool, device=rois.device)
    for image, (homography, size) in enumerate(zip(homographies, image_sizes)):
        rows = (rois[:, 0] == image).nonzero(as_tuple=True)[0]
        if len(rows) == 0:
            continue
        boxes, inside = project_boxes(rois[rows, 1:], homography, size)
        projected[rows, 1:] = boxes
        kept[rows] = inside >= min_inside
    return ProjectedRoIs(projected, kept)


class ProjectedSamplingResult(NamedTuple):
    """What mmdet's ``BBoxHead.get_targets`` reads of a sampling result, for
    the RoIs kept in the virtual view: boxes in the virtual image."""

    pos_priors: Tensor
    neg_priors: Tensor
    pos_gt_bboxes: Tensor
    pos_gt_labels: Tensor


def project_sampling_results(sampling_results: Sequence, projected: ProjectedRoIs,
                             homographies: Tensor, image_sizes: Sequence[Tuple[int, int]]
                             ) -> Tuple[List[ProjectedSamplingResult], Tensor]:
    """The sampled RoIs and their ground-truth boxes in the virtual images,
    for the student's detection losses on the virtual view.

    A positive RoI's regression target is its ground-truth box projected the
    same way (clipped; one clipped to nothing drops the RoI, as its target
    would be undefined); the classification targets do not move.

    Args:
        sampling_results (Sequence[SamplingResult]): The real view's, per
            image; their ``priors`` are the rows of ``projected``.
        projected (ProjectedRoIs): :func:`project_rois` of those RoIs.
        homographies (Tensor): Shape (N, 3, 3).
        image_sizes (Sequence[tuple]): The virtual images' valid regions.

    Returns:
        tuple: One :class:`ProjectedSamplingResult` per image, and the rows of
        ``projected`` they hold, shape (R',), in order (positives then
        negatives per image, as mmdet lays out the RoIs).
    """
    results, rows, start = [], [], 0
    for image, result in enumerate(sampling_results):
        num_pos, num_neg = len(result.pos_priors), len(result.neg_priors)
        boxes = projected.rois[start:start + num_pos + num_neg, 1:]
        kept = projected.kept[start:start + num_pos + num_neg].clone()
        gt_boxes, _ = project_boxes(result.pos_gt_bboxes, homographies[image], image_sizes[image])
        gt_nonempty = (gt_boxes[:, 2] > gt_boxes[:, 0]) & (gt_boxes[:, 3] > gt_boxes[:, 1])
        kept[:num_pos] &= gt_nonempty
        pos_kept, neg_kept = kept[:num_pos], kept[num_pos:]
        results.append(ProjectedSamplingResult(
            pos_priors=boxes[:num_pos][pos_kept], neg_priors=boxes[num_pos:][neg_kept],
            pos_gt_bboxes=gt_boxes[pos_kept], pos_gt_labels=result.pos_gt_labels[pos_kept]))
        rows.append(start + kept.nonzero(as_tuple=True)[0])
        start += num_pos + num_neg
    return results, torch.cat(rows)
