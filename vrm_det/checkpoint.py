"""Safe loading of the checkpoints mmengine writes.

torch >= 2.6 loads checkpoints with ``weights_only=True``: only tensors,
containers and allow-listed types may be unpickled. mmengine 0.10.7 writes a
few other types into ``meta`` and ``message_hub`` (its ``HistoryBuffer``,
numpy arrays, dtypes and scalars), so its own checkpoints fail to load and
``--resume`` breaks. This module allow-lists exactly those types and
registers a local-file loader that explains a refusal. Any other pickled
object is still refused: a checkpoint is untrusted input.
"""
import os
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

# Numeric and boolean dtypes; object arrays stay refused.
_NUMPY_DTYPE_CODES = '?bBhHiIlLqQefdgFD'
# The statistics every HistoryBuffer pickles a reference to.
_BUILTIN_STATISTICS = frozenset({'min', 'max', 'mean', 'current'})


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds a pickled object outside the allow-list."""


def _history_buffer_statistic(owner, name: str):
    """Stand-in for ``getattr`` while unpickling.

    A pickled ``HistoryBuffer`` refers to its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``. Only that lookup is allowed; a
    general ``getattr`` would let a file reach arbitrary attributes.
    """
    allowed = _BUILTIN_STATISTICS.union(HistoryBuffer._statistics_methods)
    if owner is HistoryBuffer and name in allowed:
        return getattr(owner, name)
    raise UntrustedCheckpointError(
        f'refused to look up attribute {name!r} of {owner!r} while unpickling')


def _numpy_safe_globals():
    core = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtypes = [type(np.dtype(code)) for code in _NUMPY_DTYPE_CODES]
    return [core._reconstruct, core.scalar, np.ndarray, np.dtype] + dtypes


MMENGINE_SAFE_GLOBALS = [HistoryBuffer, (_history_buffer_statistic, 'builtins.getattr')
                         ] + _numpy_safe_globals()


def _refusal_reason(filename: str, error: Exception) -> str:
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # not a zip checkpoint: fall back to torch's message
        unsafe = []
    if unsafe:
        return 'it holds pickled objects outside the allow-list: ' + ', '.join(unsafe)
    return 'torch refused it: ' + ' '.join(str(error).split())


def load_local_checkpoint(filename: str, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` and a clear refusal.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As in :func:`torch.load`.

    Returns:
        dict: The checkpoint.

    Raises:
        FileNotFoundError: The file does not exist.
        UntrustedCheckpointError: The file holds an object outside the
            allow-list; the message names it and what to do if the file is
            trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UntrustedCheckpointError(
            f'refused to load {filename}: {_refusal_reason(filename, error)}. '
            'Unpickling objects other than tensors and the types mmengine writes can '
            'run arbitrary code. If you trust the file, load it yourself with '
            'torch.load(path, weights_only=False), keep only its "state_dict" and '
            'save that with torch.save; or allow-list the type with '
            'torch.serialization.add_safe_globals.') from None


def register_safe_checkpoint_loading() -> None:
    """Allow-list mmengine's checkpoint types and install the local loader."""
    torch.serialization.add_safe_globals(MMENGINE_SAFE_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', loader=load_local_checkpoint, force=True)


STUDENT_PREFIX = 'student.'


def student_state_dict(checkpoint: dict) -> dict:
    """The student's weights from a distiller checkpoint, keys without ``student.``.

    Raises:
        ValueError: The checkpoint holds no student weights (it is not a
            distiller checkpoint).
    """
    state = checkpoint.get('state_dict', checkpoint)
    student = {key[len(STUDENT_PREFIX):]: value for key, value in state.items()
               if key.startswith(STUDENT_PREFIX)}
    if not student:
        sample = ', '.join(list(state)[:3])
        raise ValueError('no "student." weights in this checkpoint (keys start: '
                         f'{sample}); it is not a distiller checkpoint')
    return student


def save_student_checkpoint(src: str, dst: str) -> int:
    """Write the student of distiller checkpoint ``src`` as a plain checkpoint.

    The file at ``dst`` loads into the student's own config (mmdet's
    ``tools/test.py``, ``load_from``). It is written to a temporary file first
    and renamed, so a failure leaves no partial file.

    Returns:
        int: Number of tensors written.
    """
    state = student_state_dict(load_local_checkpoint(src, map_location='cpu'))
    directory = osp.dirname(osp.abspath(dst))
    os.makedirs(directory, exist_ok=True)
    partial = dst + '.partial'
    try:
        torch.save(dict(state_dict=state, meta=dict(converted_from=osp.abspath(src))), partial)
        os.replace(partial, dst)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    return len(state)
