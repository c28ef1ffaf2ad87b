"""Outputs that never destroy a file: atomic replacement, and failed results kept apart.

:class:`atomic_output` hands out a temporary path beside the target. What is written
there replaces the target (one ``os.replace``, after an fsync) only when the block
ends normally and the result was not marked failed; otherwise the temporary file is
removed, or, when asked, kept under a name that says it failed
(:func:`failed_path`). So the target is always either the old file or the complete
new one, also after an exception, Ctrl-C or SIGTERM (the tools turn SIGTERM into an
exception, see :mod:`ghostnetv2_mm.utils.cli`).

A target that exists and is not a regular file (``/dev/null``, a FIFO, a socket) is
never renamed over: as root, renaming onto ``/dev/null`` would replace the device
with a regular file. :func:`refuse_special` checks this when the block starts and
again just before the rename, in case such a file appeared meanwhile.

This module is the package's one writer of files that must not be lost:
:func:`atomic_write_bytes` / :func:`atomic_write_text` for a file written at once,
:class:`atomic_output` for a writer that wants a path. Writing into the temporary
file of an open :class:`atomic_output` (an export inside a tool's output block)
writes that file directly: the target is replaced once, when the block ends.
"""
import os
import stat
import tempfile
from typing import Optional

from ..errors import UserError

TEMP_TAG = '.tmp-'
# the temporary files of the atomic outputs now open (absolute paths)
_OPEN_TEMPS = set()


def special_file_kind(path: str) -> Optional[str]:
    """What ``path`` is when it exists and is neither a regular file nor a folder
    (``'a character device'``, ``'a FIFO'``, ...), else None. Links are followed:
    a link to ``/dev/null`` is a character device."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    for test, kind in ((stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return kind
    return 'not a regular file'


def failed_path(path) -> str:
    """Where a result whose check failed is kept: ``x.onnx`` -> ``x.failed.onnx``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f'{root}.failed{ext}'


def refuse_special(path) -> None:
    """Raise :class:`~ghostnetv2_mm.utils.cli.UserError` when ``path`` exists and is
    not a regular file or folder (a device, a FIFO, a socket): it must not be
    replaced."""
    kind = special_file_kind(os.fspath(path))
    if kind:
        raise UserError(f'{os.fspath(path)!r} is {kind}, not a regular file: it is never '
                        'replaced; nothing was written there')


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _replace(tmp: str, target: str) -> None:
    """Flush ``tmp`` to disk and rename it to ``target``, with the mode a plain
    ``open()`` would give (or the mode of the file it replaces)."""
    with open(tmp, 'rb+') as f:
        os.fsync(f.fileno())
    refuse_special(target)  # (it may have appeared since the block began)
    try:
        mode = os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    os.chmod(tmp, mode)  # mkstemp makes the file private (0600)
    os.replace(tmp, target)


class atomic_output:  # noqa: N801 - used as a context manager, like open()
    """Context manager: ``with atomic_output(path) as out:`` write ``out.path``.

    Args:
        path (str): The file to write (its folder is created if missing).
        keep_failed (bool): When the result is marked failed (:meth:`fail`), keep it
            as :func:`failed_path` of ``path`` instead of removing it.

    Attributes:
        path (str): The temporary file to write, beside the target, with the
            target's extension (writers that pick the format by extension work).
        target (str): The file that is replaced on success.
        kept (str or None): Where the result ended up after the block: ``target``,
            the failed path, or None (discarded).
    """

    def __init__(self, path, keep_failed: bool = False):
        self.target = os.fspath(path)
        self.keep_failed = keep_failed
        self.failure: Optional[str] = None
        self.kept: Optional[str] = None
        self.existed = False
        self.path = ''

    def fail(self, reason: str = 'failed') -> None:
        """Mark the result failed: the target is not replaced."""
        self.failure = reason

    def outcome(self) -> str:
        """One line for the user: what happened to the target (after the block)."""
        if self.kept == self.target:
            return f'wrote {self.target}' + (' (replaced the existing file)'
                                             if self.existed else '')
        line = f'{self.target}: not written' + (' (the existing file is unchanged)'
                                                 if self.existed else '')
        if self.kept:
            return line + f'; the rejected result is kept as {self.kept}'
        if self.failure is not None:
            return line + ' (--keep-failed keeps the rejected result)'
        return line

    def __enter__(self):
        refuse_special(self.target)
        if self.keep_failed:
            refuse_special(failed_path(self.target))
        self.existed = os.path.exists(self.target)
        directory = os.path.dirname(os.path.abspath(self.target))
        os.makedirs(directory, exist_ok=True)
        name = os.path.basename(self.target)
        fd, self.path = tempfile.mkstemp(prefix=f'.{name}{TEMP_TAG}',
                                         suffix=os.path.splitext(name)[1], dir=directory)
        _OPEN_TEMPS.add(os.path.abspath(self.path))
        os.close(fd)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None and self.failure is None:
                _replace(self.path, self.target)
                self.kept = self.target
            elif (exc_type is None and self.keep_failed and os.path.isfile(self.path)
                  and os.path.getsize(self.path) > 0):
                self.kept = failed_path(self.target)
                _replace(self.path, self.kept)
        finally:
            _OPEN_TEMPS.discard(os.path.abspath(self.path))
            if self.kept is None and os.path.exists(self.path):
                os.unlink(self.path)
        return False


def atomic_write_bytes(data: bytes, path) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the
    complete new one, never a half-written file."""
    if os.path.abspath(os.fspath(path)) in _OPEN_TEMPS:
        # already the temporary file of an open atomic_output: no second one
        with open(path, 'wb') as f:
            f.write(data)
        return
    with atomic_output(path) as out:
        with open(out.path, 'wb') as f:
            f.write(data)


def atomic_write_text(text: str, path) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8, line ends as given."""
    atomic_write_bytes(text.encode('utf-8'), path)
