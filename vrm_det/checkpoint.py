"""Safe loading of the checkpoints mmengine writes.

torch >= 2.6 loads checkpoints with ``weights_only=True``: only tensors,
containers and allow-listed types may be unpickled. mmengine 0.10.7 writes a
few other types into ``meta`` and ``message_hub`` (its ``HistoryBuffer``,
numpy arrays, dtypes and scalars), so its own checkpoints fail to load and
``--resume`` breaks. This module allow-lists exactly those types and
registers a local-file loader that explains a refusal. Any other pickled
object is still refused: a checkpoint is untrusted input.
"""
import io
import logging
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer, print_log
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


def load_local_checkpoint(filename: str, map_location=None, weights_entry: str = 'state_dict'):
    """Load a local checkpoint with ``weights_only=True`` and a clear refusal.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As in :func:`torch.load`.
        weights_entry (str): The entry that holds the weights, named in the
            refusal as the part to keep.

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
            f'torch.load(path, weights_only=False), keep only its "{weights_entry}" '
            'and save that with torch.save; or allow-list the type with '
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
    buffer = io.BytesIO()
    torch.save(dict(state_dict=state, meta=dict(converted_from=osp.abspath(src))), buffer)
    write_atomically(dst, buffer.getvalue())
    return len(state)


PARTIAL_SUFFIX = '.partial'


def write_atomically(path: str, data: Union[bytes, str]) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds its old content or
    all of the new one, never a part.

    The data go to ``path + '.partial'`` in the same directory, are flushed
    to disk, and that file is renamed over ``path`` (an atomic replacement
    within one file system). A process killed mid-write leaves at most the
    ``.partial`` file behind.

    Args:
        path (str): The destination; its directory is created if needed.
        data (bytes | str): Bytes, or text written as UTF-8.
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = path + PARTIAL_SUFFIX
    try:
        with open(partial, 'wb') as file:
            file.write(data.encode('utf-8') if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, path)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    # The rename itself reaches the disk only with the directory's entry.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint file.

    ``torch.save`` writes a zip archive whose directory comes last: a file cut
    off mid-write (or never flushed to disk) has no readable directory.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


_CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def latest_complete_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint an automatic resume should load from ``work_dir``.

    The target of ``work_dir/last_checkpoint`` when it is complete; else, with
    a warning, the complete ``iter_N.pth`` / ``epoch_N.pth`` of the largest
    ``N``; None when there is none.
    """
    if not osp.isdir(work_dir):
        return None
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as file:
            named = file.read().strip() or None
    if named is not None and is_complete_checkpoint(named):
        return named
    numbered = sorted(((int(match.group(1)), name) for name in os.listdir(work_dir)
                       if (match := _CHECKPOINT_NAME.match(name))), reverse=True)
    for _, name in numbered:
        path = osp.join(work_dir, name)
        if path != named and is_complete_checkpoint(path):
            print_log(f'{named or pointer} is missing or incomplete (cut off while being '
                      f'written?); resuming from {path}, the latest complete checkpoint',
                      logger='current', level=logging.WARNING)
            return path
    return None
