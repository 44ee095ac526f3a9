"""What the KD benchmark's backbones share: their initialisation and the
choice of the stages they return."""
from typing import Mapping, Sequence, Tuple, TypeVar

Preset = TypeVar('Preset')

# The benchmark draws convolution weights from a zero-mean normal with variance
# 2 / (k * k * out_channels) (He initialisation, fan-out), zeroes convolution
# biases and sets batch-norm scales to one.
CONV_BN_INIT = [
    dict(type='Kaiming', layer='Conv2d', mode='fan_out', nonlinearity='relu',
         distribution='normal'),
    dict(type='Constant', layer=['_BatchNorm'], val=1, bias=0),
]


def check_out_indices(out_indices: Sequence[int], num_stages: int, name: str) -> Tuple[int, ...]:
    """``out_indices`` with negative indices made positive.

    Raises:
        ValueError: An index is outside ``[-num_stages, num_stages - 1]`` or
            none is given.
    """
    indices = tuple(out_indices)
    if not indices or any(not -num_stages <= index < num_stages for index in indices):
        raise ValueError(f'{name} out_indices must be non-empty and in '
                         f'[-{num_stages}, {num_stages - 1}], got {indices}')
    return tuple(index % num_stages for index in indices)


def preset(arch_settings: Mapping[str, Preset], arch: str, name: str) -> Preset:
    """The settings of the preset ``arch``.

    Raises:
        KeyError: ``arch`` is not a preset; the message lists them.
    """
    if arch not in arch_settings:
        raise KeyError(f'unknown {name} arch {arch!r}; presets: {", ".join(arch_settings)}')
    return arch_settings[arch]
