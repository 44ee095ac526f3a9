"""Released teacher weights as mmpretrain ``ImageClassifier`` checkpoints.

Two sources:

* the CIFAR-100 teachers of the KD benchmark, the ``cifar_teachers.tar``
  release that megvii-research/mdistiller downloads (README, "Training on
  CIFAR-100"), laid out as ``<arch>_vanilla/ckpt_epoch_240.pth`` (e.g.
  ``resnet32x4_vanilla/ckpt_epoch_240.pth``; HobbitLong/RepDistiller
  ``scripts/fetch_pretrained_teachers.sh`` fetches the same files one by one).
  Each file is a dict whose ``'model'`` entry is the network's state dict
  (RepDistiller ``train_teacher.py`` saves ``epoch``, ``model``, ``accuracy``
  and ``optimizer``; its ``train_student.py`` ``load_teacher`` and
  mdistiller's ``tools/train.py`` read ``['model']``);
* torchvision's ImageNet ResNet state dicts (``resnet34-b627a593.pth``,
  ``resnet50-0676ba61.pth``), plain dicts of tensors.

A converted file holds ``{'state_dict': ..., 'meta': ...}`` with
``backbone.*`` and ``head.fc.*`` keys and loads strictly into the classifier of
:func:`vrm_det.models.backbones.cifar_classifier` /
:func:`~vrm_det.models.backbones.imagenet_classifier` of the same ``arch``.
Files are read with the project's ``weights_only`` loader.
"""
import io
import os.path as osp
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import torch
from torch import Tensor

from vrm_det.checkpoint import UntrustedCheckpointError, load_local_checkpoint, write_atomically
from vrm_det.models.backbones.classifiers import (
    CIFAR_BACKBONES,
    IMAGENET_BACKBONES,
    cifar_classifier,
    imagenet_classifier,
)

HEAD_PREFIX = 'head.fc.'
BACKBONE_PREFIX = 'backbone.'


@dataclass(frozen=True)
class KeyMapping:
    """How a released network's state-dict keys become the classifier's.

    Args:
        head_prefix (str): Prefix of the released network's final linear
            layer; its keys move under ``head.fc.``.
        backbone_rules (tuple): ``(pattern, replacement)`` pairs applied in
            order with :func:`re.sub` to every other key, which then moves
            under ``backbone.``.
    """
    head_prefix: str
    backbone_rules: Tuple[Tuple[str, str], ...] = ()

    def rename(self, key: str) -> str:
        if key.startswith(self.head_prefix):
            return HEAD_PREFIX + key[len(self.head_prefix):]
        for pattern, replacement in self.backbone_rules:
            key = re.sub(pattern, replacement, key)
        return BACKBONE_PREFIX + key


# Released module names (RepDistiller models/*.py) -> this project's backbones.
CIFAR_KEY_MAPPINGS: Dict[str, KeyMapping] = {
    'CifarResNet': KeyMapping('fc.'),
    'CifarWideResNet': KeyMapping('fc.', (
        (r'^bn1\.', 'final_norm.'),
        (r'^block(\d)\.layer\.', r'layer\1.'),
        (r'\.convShortcut\.', '.shortcut.'),
    )),
    'CifarVGG': KeyMapping('classifier.', ((r'^block(\d)\.', r'stages.\1.'), )),
    'CifarMobileNetV2': KeyMapping('classifier.0.', (
        (r'^conv1\.', 'stem.'),
        (r'^blocks\.', 'groups.'),
        (r'\.conv\.', '.layers.'),
        (r'^conv2\.', 'last_conv.'),
    )),
    'ResNet_CIFAR': KeyMapping('linear.', ((r'\.shortcut\.', '.downsample.'), )),
}
# torchvision's ResNet and mmpretrain's ResNet name their layers alike.
TORCHVISION_RESNET_MAPPING = KeyMapping('fc.')

# Entries of a teacher file that hold its weights, in the order they are tried: the KD
# benchmark's teachers (and torchvision's reference training scripts) keep them in 'model'.
WEIGHT_ENTRIES = ('model', 'state_dict')


def teacher_weights(checkpoint: dict, filename: str) -> Dict[str, Tensor]:
    """The network weights in a loaded teacher file.

    The ``'model'`` entry (KD benchmark) or the ``'state_dict'`` entry, or the
    file itself when it is a flat dict of tensors (torchvision); a
    ``module.`` prefix (``DataParallel``) is removed.

    Raises:
        ValueError: No entry holds a dict of tensors.
    """
    state = next((checkpoint[entry] for entry in WEIGHT_ENTRIES
                  if isinstance(checkpoint.get(entry), dict)), checkpoint)
    if not state or not all(isinstance(value, Tensor) for value in state.values()):
        raise ValueError(f'{filename} holds no state dict: expected a "model" or '
                         f'"state_dict" entry, or a dict of tensors; found the entries '
                         f'{sorted(map(str, checkpoint))[:8]}')
    if all(key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    return state


def expected_shapes(classifier_cfg: dict) -> Dict[str, torch.Size]:
    """Key -> shape of the state dict of the classifier ``classifier_cfg`` builds."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    # mmpretrain's models resolve their parts in its scope, whichever scope is current.
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(classifier_cfg)
    return {key: value.shape for key, value in model.state_dict().items()}


def _differences(state: Dict[str, Tensor], shapes: Dict[str, torch.Size]) -> List[str]:
    missing = [key for key in shapes if key not in state]
    unexpected = [key for key in state if key not in shapes]
    mismatched = [f'{key} {tuple(state[key].shape)} != {tuple(shapes[key])}'
                  for key in shapes if key in state and state[key].shape != shapes[key]]

    def listing(keys: List[str]) -> str:
        return ', '.join(keys[:6]) + (f' ... ({len(keys)} in all)' if len(keys) > 6 else '')

    return [f'{label}: [{listing(keys)}]' for label, keys in
            (('missing keys', missing), ('unexpected keys', unexpected),
             ('shape mismatches (file != network)', mismatched)) if keys]


def _fill_batch_counts(converted: Dict[str, Tensor], shapes: Dict[str, torch.Size]) -> None:
    """Add the batch-norm ``num_batches_tracked`` counters a file lacks.

    Files written before PyTorch 0.4.1 have none; the counter only matters
    when batch norm runs with ``momentum=None``.
    """
    for key in shapes:
        if key.endswith('.num_batches_tracked') and key not in converted:
            running_mean = key[:-len('num_batches_tracked')] + 'running_mean'
            if running_mean in converted:
                converted[key] = torch.tensor(0, dtype=torch.long)


@dataclass(frozen=True)
class TeacherFamily:
    """The networks one source releases: the classifier configs and key mappings."""
    dataset: str
    archs: Tuple[str, ...]
    classifier: Callable[[str, int], dict]
    mapping: Callable[[str], KeyMapping]


CIFAR_TEACHERS = TeacherFamily(
    'CIFAR', tuple(CIFAR_BACKBONES), cifar_classifier,
    lambda arch: CIFAR_KEY_MAPPINGS[CIFAR_BACKBONES[arch][0]['type']])
TORCHVISION_TEACHERS = TeacherFamily(
    'ImageNet', tuple(arch for arch, (backbone, _) in IMAGENET_BACKBONES.items()
                      if backbone['type'] == 'ResNet'),
    imagenet_classifier, lambda arch: TORCHVISION_RESNET_MAPPING)


def _convert(state: Dict[str, Tensor], arch: str, family: TeacherFamily
             ) -> Tuple[Dict[str, Tensor], dict, List[str]]:
    """The renamed weights, the classifier config and how the two differ."""
    mapping = family.mapping(arch)
    head = state.get(mapping.head_prefix + 'weight')
    if head is None or head.dim() != 2:
        return {}, {}, [f'no final linear layer "{mapping.head_prefix}weight"']
    classifier_cfg = family.classifier(arch, head.shape[0])
    converted = {mapping.rename(key): value for key, value in state.items()}
    shapes = expected_shapes(classifier_cfg)
    _fill_batch_counts(converted, shapes)
    return converted, classifier_cfg, _differences(converted, shapes)


def convert_teacher_state(state: Dict[str, Tensor], arch: str, family: TeacherFamily,
                          filename: str = 'the checkpoint') -> Tuple[Dict[str, Tensor], dict]:
    """Rename a released network's weights for the classifier of ``arch``.

    Args:
        state (dict): The released network's state dict.
        arch (str): The network's name in ``family.archs``.
        family (TeacherFamily): :data:`CIFAR_TEACHERS` or
            :data:`TORCHVISION_TEACHERS`.
        filename (str): Named in error messages.

    Returns:
        tuple: The classifier's state dict and the classifier's config (its
        ``num_classes`` read from the file's final layer).

    Raises:
        KeyError: ``arch`` is not a network of ``family``.
        ValueError: The weights do not fit the classifier of ``arch``; the
            message lists the differences and the archs the file does fit.
    """
    if arch not in family.archs:
        raise KeyError(f'unknown {family.dataset} teacher arch {arch!r}; known: '
                       f'{", ".join(family.archs)}')
    converted, classifier_cfg, differences = _convert(state, arch, family)
    if differences:
        fitting = [other for other in family.archs
                   if other != arch and not _convert(state, other, family)[2]]
        hint = (f'The weights fit --arch {" or ".join(fitting)}' if fitting else
                f'They fit none of the known {family.dataset} archs '
                f'({", ".join(family.archs)})')
        raise ValueError(f'{filename} is not a {arch} network: ' + '; '.join(differences)
                         + f'. {hint}.')
    return converted, classifier_cfg


def convert_teacher_file(src: str, dst: str, arch: str, family: TeacherFamily) -> int:
    """Convert the teacher file ``src`` and write the classifier checkpoint ``dst``.

    ``dst`` is written atomically: a failure leaves no partial file.

    Returns:
        int: Number of tensors written.

    Raises:
        UntrustedCheckpointError: ``src`` holds pickled objects outside the
            allow-list; the message says how to keep only the weights.
        ValueError: See :func:`convert_teacher_state`.
    """
    try:
        checkpoint = load_local_checkpoint(src, map_location='cpu',
                                           weights_entry=WEIGHT_ENTRIES[0])
    except UntrustedCheckpointError as error:
        raise UntrustedCheckpointError(
            f'{error} For example: torch.save(torch.load("{src}", weights_only=False)'
            f'["{WEIGHT_ENTRIES[0]}"], "weights.pth"), then convert weights.pth.') from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{src} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    state, classifier_cfg = convert_teacher_state(teacher_weights(checkpoint, src), arch,
                                                  family, filename=src)
    meta = dict(arch=arch, dataset=family.dataset, converted_from=osp.abspath(src),
                classifier=classifier_cfg)
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state, meta=meta), buffer)
    write_atomically(dst, buffer.getvalue())
    return len(state)
