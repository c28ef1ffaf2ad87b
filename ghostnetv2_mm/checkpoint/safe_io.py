"""Checkpoints are data, not code: safe loading and atomic saving.

``torch.load`` with ``weights_only=False`` (what mmengine 0.10.7 effectively asks for,
and what old torch did by default) unpickles arbitrary objects, so a checkpoint can run
code. Here every checkpoint is read with ``weights_only=True``; the few non-tensor
classes that mmengine checkpoints legitimately contain (its HistoryBuffer, numpy arrays
and scalars in the message hub, ...) are allowed BY NAME and nothing else is.

:func:`register_safe_globals` (run on ``import ghostnetv2_mm``) adds exactly those
classes to torch's safe-loading allow-list, so that mmengine's own ``--resume`` and
``load_from`` (which call ``torch.load`` with torch's default ``weights_only=True`` on
torch >= 2.6) read mmengine checkpoints; it is the only process-wide change the plugin
makes. Atomic writes are opt-in: :class:`AtomicLocalBackend` is an mmengine file backend
that this project's ``tools/train.py`` selects for its CheckpointHook.
"""
import os
import pickle
from typing import List

import torch

from ..errors import UserError
from ..utils.fileio import atomic_write_bytes  # noqa: F401  (part of this module's API)


class CheckpointError(RuntimeError, UserError):
    """A checkpoint file that cannot (or must not) be loaded (the tools report it
    as one line, see ``ghostnetv2_mm.utils.cli``)."""


# What a checkpoint written by mmengine 0.10.x's Runner.save_checkpoint references
# besides tensors and builtin containers, as reported by
# torch.serialization.get_unsafe_globals_in_checkpoint on a real checkpoint
# (tests/test_tools.py checks the list against a fresh one):
#   numpy.ndarray, numpy.dtype, numpy.core.multiarray._reconstruct,
#   numpy.core.multiarray.scalar      (message hub: log scalars and runtime info)
#   mmengine.logging.history_buffer.HistoryBuffer  (message hub: log scalars)
#   builtins.getattr   (HistoryBuffer pickles its statistics methods as
#                       getattr(HistoryBuffer, 'mean'), ...; see _history_buffer_method)
# Unpickling a numpy dtype also BUILDs an instance of its class (numpy.dtypes.
# Float64DType, ...; numpy >= 1.25), which the unpickler allows only for listed types.
HISTORY_BUFFER_STATISTICS = ('current', 'max', 'mean', 'min')


def _history_buffer_method(obj, name):
    """Stand-in for ``builtins.getattr`` while loading a checkpoint.

    mmengine's ``HistoryBuffer.__getstate__`` stores its statistics methods, which
    pickle as ``getattr(HistoryBuffer, 'min')`` etc. A real ``getattr`` would let a
    crafted file walk from any allowed object to ``__globals__`` and ``eval``, so only
    exactly those four lookups resolve (to the functions on the class, which the
    unpickler cannot call); anything else refuses the file.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: getattr({getattr(obj, "__name__", type(obj).__name__)}, '
        f'{name!r}) is not a lookup mmengine checkpoints make')


def _allowed_globals() -> List:
    """Non-tensor objects an mmengine/torch checkpoint may reference, by name.

    Entries are objects, or ``(object, 'module.name')`` pairs where the name in the
    file differs from the object's own (numpy 1.x files read under numpy 2, whose
    ``numpy.core`` became ``numpy._core``; the restricted ``getattr``).
    """
    import numpy as np
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:
        multiarray = np.core.multiarray
    allowed = [np.ndarray, np.dtype, (_history_buffer_method, 'builtins.getattr')]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:  # the classes of dtype instances (Float64DType, ...)
        allowed += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    for package in ('numpy.core', 'numpy._core'):
        allowed += [(multiarray._reconstruct, f'{package}.multiarray._reconstruct'),
                    (multiarray.scalar, f'{package}.multiarray.scalar')]
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
        allowed.append(HistoryBuffer)
    except ImportError:  # pragma: no cover - mmengine is a dependency
        pass
    return allowed


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
        # Registered process-wide (idempotent), not with the safe_globals context
        # manager: leaving that context removes its entries, which would take the
        # process-wide registration (mmengine's --resume / load_from) away with them.
        register_safe_globals()
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise refusal_error(path, exc) from None
    except Exception as exc:  # noqa: BLE001 - any other failure: not a readable file
        # (a truncated zip, a text file: torch fails with RuntimeError, EOFError,
        # BadZipFile, or even KeyError on bytes it takes for a legacy pickle)
        raise CheckpointError(f'cannot read checkpoint {path!r}: it is not a PyTorch '
                              'checkpoint, or it is truncated or corrupted '
                              f'({type(exc).__name__}: {exc})') from None


def refusal_error(path, exc: pickle.UnpicklingError) -> CheckpointError:
    """The error for a file that torch's ``weights_only`` loading refused: by this
    project's reader, or by mmengine's (``--resume``, ``load_from``)."""
    message = str(exc)
    # what torch's weights_only unpickler says when a file asks for code (an import,
    # a call, an object built from a class outside the allow-list)
    # (compared without case: torch words it "Unsupported global" and, for a blocked
    # module such as posix, "unsupported GLOBAL posix.system whose module posix is
    # blocked")
    refusals = ('unsupported global', 'unrecognized function', 'can only build',
                'unsupported class', 'is blocked')
    detail = next((line.strip() for line in message.splitlines()
                   if any(r in line.lower() for r in refusals)), None)
    if detail is not None:
        return CheckpointError(
            f'refused to load checkpoint {path!r}: it references a Python object '
            f'that is not plain data ({detail}). Checkpoints are loaded as data only; '
            'nothing from the file was run. If you made this file yourself and '
            'trust it, re-save its tensors with torch.save(state_dict).')
    # anything else (e.g. "Unsupported operand"): bytes that are no pickle at all
    detail = next((line.strip() for line in message.splitlines()
                   if 'Unsupported operand' in line), type(exc).__name__)
    return CheckpointError(f'cannot read checkpoint {path!r}: it is not a PyTorch '
                           f'checkpoint, or it is truncated or corrupted ({detail})')


def save_checkpoint_file(obj, path) -> None:
    """``torch.save`` that never leaves a partial file at ``path``."""
    import io
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def register_safe_globals() -> None:
    """Allow, process-wide, the non-tensor classes of mmengine checkpoints (above) in
    torch's ``weights_only`` loading. Idempotent. Called on ``import ghostnetv2_mm``."""
    torch.serialization.add_safe_globals(_allowed_globals())


def _register_atomic_backend() -> None:
    from mmengine.fileio.backends import LocalBackend, register_backend

    class AtomicLocalBackend(LocalBackend):
        """mmengine's local file backend, except that ``put`` (which mmengine's
        ``save_checkpoint`` uses for the serialised checkpoint) writes atomically.
        Select it with ``CheckpointHook(backend_args=dict(backend=ATOMIC_BACKEND))``."""

        def put(self, obj, filepath) -> None:
            atomic_write_bytes(bytes(obj), filepath)

    register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)
    return AtomicLocalBackend


# The name under which the atomic backend is registered in mmengine's file backends
# (a new name: mmengine's own 'local' backend is unchanged).
ATOMIC_BACKEND = 'ghostnetv2_mm_atomic_local'
AtomicLocalBackend = _register_atomic_backend()
