"""Checkpoints are data, not code: safe loading and atomic saving.

``torch.load`` with ``weights_only=False`` (what mmengine 0.10.7 effectively asks for,
and what old torch did by default) unpickles arbitrary objects, so a checkpoint can run
code. Here every checkpoint is read with ``weights_only=True``; the few non-tensor
classes that mmengine checkpoints legitimately contain (its HistoryBuffer, numpy arrays
and scalars in the message hub, ...) are allowed BY NAME and nothing else is.

:func:`install_mmengine_hooks` routes mmengine's local checkpoint loading (``--resume``,
``load_from``, ``init_cfg=dict(type='Pretrained')``) through :func:`load_checkpoint_file`,
which also fixes mmengine's ``--resume`` under torch >= 2.6 without turning off safe
loading globally, and makes mmengine's local checkpoint writes atomic.
"""
import os
import pickle
import tempfile
import zipfile
from contextlib import contextmanager
from typing import Iterator, List

import torch


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot (or must not) be loaded."""


def _allowed_globals() -> List:
    """Non-tensor classes an mmengine/torch checkpoint may contain, by name."""
    import numpy as np
    allowed = [np.ndarray, np.dtype, np.core.multiarray._reconstruct,
               np.core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes as instances of these per-type classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        allowed.append(HistoryBuffer)
    except ImportError:  # pragma: no cover - mmengine is a dependency
        pass
    try:
        from mmengine.config.config import ConfigDict
        allowed.append(ConfigDict)
    except ImportError:  # pragma: no cover
        pass
    return allowed


@contextmanager
def _safe_globals() -> Iterator[None]:
    with torch.serialization.safe_globals(_allowed_globals()):
        yield


def load_checkpoint_file(path, map_location='cpu'):
    """Load a checkpoint file as data only.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is truncated/corrupted, or it references a Python
            object (a function, a class outside the allow-list) that would have to be
            executed or imported to load it; nothing from the file is run.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint file not found: {path!r}')
    try:
        with _safe_globals():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if 'Weights only load failed' in message or 'Unsupported global' in message:
            detail = next((line.strip() for line in message.splitlines()
                           if 'Unsupported global' in line or 'GLOBAL' in line), message)
            raise CheckpointError(
                f'refused to load checkpoint {path!r}: it references a Python object '
                f'that is not plain data ({detail}). Checkpoints are loaded as data only; '
                'nothing from the file was run. If you made this file yourself and '
                'trust it, re-save its tensors with torch.save(state_dict).') from None
        raise CheckpointError(f'cannot read checkpoint {path!r}: the file is corrupted '
                              f'({exc})') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f'cannot read checkpoint {path!r}: the file is truncated or '
                              f'corrupted ({type(exc).__name__}: {exc})') from None


def atomic_write_bytes(data: bytes, path) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the
    complete new one, never a half-written file (write to a temp file, fsync, rename).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.pth', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint_file(obj, path) -> None:
    """``torch.save`` that never leaves a partial file at ``path``."""
    import io
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


_HOOKS_INSTALLED = False


def install_mmengine_hooks() -> None:
    """Make mmengine read local checkpoints safely and write them atomically.

    Idempotent. Called on ``import ghostnetv2_mm``.
    """
    global _HOOKS_INSTALLED
    if _HOOKS_INSTALLED:
        return
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.runner.checkpoint import CheckpointLoader

    @CheckpointLoader.register_scheme(prefixes='', force=True)
    def _load_local_safely(filename, map_location):
        return load_checkpoint_file(filename, map_location=map_location)

    original_put = LocalBackend.put

    def _atomic_put(self, obj, filepath):
        # mmengine's save_checkpoint serialises to bytes, then calls put().
        if isinstance(obj, (bytes, bytearray)) and str(filepath).endswith('.pth'):
            atomic_write_bytes(bytes(obj), filepath)
        else:
            original_put(self, obj, filepath)

    LocalBackend.put = _atomic_put
    _HOOKS_INSTALLED = True
