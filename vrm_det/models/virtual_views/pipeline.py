"""A virtual view made by the data pipeline: each sample arrives as two views
(mmpretrain's ``MultiView``: the real image, and the same image through
``RandAugment``), and each view is preprocessed as the student's data
preprocessor would preprocess a batch of it."""
from typing import List, Sequence

from torch import Tensor, nn

from vrm_det.registry import register_model


@register_model
class PipelineView(nn.Module):
    """Marks a distiller whose virtual view comes with the batch.

    The train pipeline ends with ``MultiView`` (two views: the real image,
    then its augmented copy) and ``PackInputs``; the distiller takes the
    second view as the virtual one. Geometric operations are allowed: a class
    label does not move with the image.
    """

    def forward(self, images: Tensor) -> Tensor:
        raise RuntimeError(
            'PipelineView makes no view itself: the data pipeline gives each sample two '
            "views. End train_pipeline with dict(type='MultiView', num_views=[1, 1], "
            "transforms=[[], [dict(type='RandAugment', ...)]]) and dict(type='PackInputs')")


def split_views(inputs) -> List[Sequence]:
    """The views of a collated multi-view batch, each as its preprocessor takes it.

    Both of mmengine's collate functions put the views first: ``pseudo_collate``
    (the default) gives one list of images per view, ``default_collate`` one
    batched tensor per view. A single-view batch (a list of images, or one
    batched tensor) is returned as the one view it is.
    """
    if isinstance(inputs, (list, tuple)) and inputs:
        first = inputs[0]
        if isinstance(first, (list, tuple)):
            sizes = {len(view) for view in inputs}
            if len(sizes) != 1:
                raise ValueError(f'the views of one batch hold different numbers of images: '
                                 f'{sorted(sizes)}')
            return [list(view) for view in inputs]
        if isinstance(first, Tensor) and first.dim() == 4:
            return list(inputs)
    return [inputs]


class ViewwiseDataPreprocessor(nn.Module):
    """A data preprocessor applied to each view of a multi-view batch.

    Returns ``inputs`` as a list of preprocessed views (one view: the tensor
    itself, as the wrapped preprocessor returns it). Attributes not defined
    here (mean, std, channel order, device) are the wrapped preprocessor's, so
    code that reads the student's normalisation reads it through this wrapper.

    Args:
        preprocessor (nn.Module): The student's data preprocessor.
    """

    def __init__(self, preprocessor: nn.Module) -> None:
        super().__init__()
        self.preprocessor = preprocessor

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__('preprocessor'), name)

    def forward(self, data: dict, training: bool = False) -> dict:
        if isinstance(data['inputs'], dict):
            return self._forward_branches(data, training)
        views = split_views(data['inputs'])
        if len(views) == 1:
            return self.preprocessor(data, training)
        if training and getattr(self.preprocessor, 'batch_augments', None) is not None:
            raise ValueError('batch augments (mixup, cutmix) mix each view differently and '
                             'would break the real/virtual pairing: remove batch_augments from '
                             "the student's data_preprocessor, or use the in-model view")
        processed = [self.preprocessor(dict(data, inputs=view), training) for view in views]
        return dict(processed[0], inputs=[p['inputs'] for p in processed])

    def _forward_branches(self, data: dict, training: bool) -> dict:
        """mmdet's ``MultiBranch`` batch: ``inputs`` and ``data_samples`` are
        dicts keyed by branch; each branch is preprocessed with its own
        samples (their metainfo differs), and must pad to the same size."""
        inputs, samples = data['inputs'], data.get('data_samples')
        if not isinstance(samples, dict) or set(samples) != set(inputs):
            raise ValueError('a MultiBranch batch needs data_samples keyed by the same '
                             f'branches as inputs ({sorted(inputs)})')
        processed = {branch: self.preprocessor(dict(inputs=inputs[branch],
                                                    data_samples=samples[branch]), training)
                     for branch in inputs}
        shapes = {branch: tuple(p['inputs'].shape) for branch, p in processed.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError(f'the branches of one batch have different shapes {shapes}: '
                             'resize before MultiBranch, so that both views of an image '
                             'have its size')
        return dict(inputs={branch: p['inputs'] for branch, p in processed.items()},
                    data_samples={branch: p['data_samples'] for branch, p in processed.items()})
