"""The command-line tools' shared error path and argument checks.

Every tool's ``main(argv)`` is wrapped in :func:`tool_main`. A mistake (a bad
argument, a missing or unreadable file, a checkpoint that does not fit) is reported
as ONE line, ``error: ...``, naming the argument or the file, and the tool exits
non-zero (2 for arguments, 1 otherwise); the traceback only with ``--debug``, which
:class:`ToolParser` adds to every tool. SIGTERM and Ctrl-C become exceptions, so
that temporary files are removed and no output is left half-written
(:mod:`ghostnetv2_mm.utils.fileio`).

The argument types (``positive_int``, ``finite_float``, ``existing_file``, ...) and
:func:`check_output` run while the arguments are parsed, before any work.
"""
import argparse
import functools
import math
import os
import signal
import sys
from typing import Iterable, List, Optional, Sequence, Tuple

from ..errors import UserError  # noqa: F401  (tools import it from here)
from .fileio import failed_path, special_file_kind

ARGUMENT_STATUS = 2
# The largest image side a tool takes (input sizes, --size, --shape): one feature map
# of the stem at this side already needs 1 GiB; beyond it a run is killed for memory
# without a word instead of refused.
MAX_IMAGE_SIDE = 8192
TERMINATED_STATUS = 128 + signal.SIGTERM
INTERRUPTED_STATUS = 128 + signal.SIGINT


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException, like KeyboardInterrupt: clean-ups run)."""


# Exceptions whose message already says which file is wrong and why.
FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _one_line(text: str) -> str:
    return ' '.join(str(text).split())


def error_line(exc: BaseException) -> str:
    """The one line a tool prints for ``exc``."""
    if isinstance(exc, (UserError,) + FILE_ERRORS):
        return f'error: {_one_line(exc)}'
    return (f'error: {type(exc).__name__}: {_one_line(exc)} (unexpected: run again with '
            '--debug for the traceback)')


_HANDLER_PID = []


def _raise_terminated(signum, frame):
    if _HANDLER_PID and os.getpid() != _HANDLER_PID[-1]:
        # a forked child (a data loader worker) inherited the handler: die as usual
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


def tool_main(func):
    """Decorator for a tool's ``main(argv=None)``: the shared error path.

    The wrapped function returns ``func``'s exit status; on an error it prints one
    line to stderr and raises ``SystemExit`` with a non-zero status (with ``--debug``
    in ``argv`` the exception propagates with its traceback instead).
    """

    @functools.wraps(func)
    def main(argv: Optional[Sequence[str]] = None):
        given = sys.argv[1:] if argv is None else list(argv)
        debug = '--debug' in given
        restore = None
        try:
            restore = signal.signal(signal.SIGTERM, _raise_terminated)
            _HANDLER_PID.append(os.getpid())
        except ValueError:  # not the main thread: leave the signal alone
            pass
        try:
            return func(argv)
        except Terminated:
            print('error: terminated (SIGTERM); nothing was left half-written',
                  file=sys.stderr)
            raise SystemExit(TERMINATED_STATUS) from None
        except KeyboardInterrupt:
            print('error: interrupted; nothing was left half-written', file=sys.stderr)
            raise SystemExit(INTERRUPTED_STATUS) from None
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that reports errors
            if debug:
                raise
            print(error_line(exc), file=sys.stderr)
            raise SystemExit(getattr(exc, 'status', 1) or 1) from None
        finally:
            if restore is not None:
                signal.signal(signal.SIGTERM, restore)
                _HANDLER_PID.pop()

    return main


class ToolParser(argparse.ArgumentParser):
    """ArgumentParser with ``--debug``, whose errors go through the shared error
    path: one line naming the argument, exit status 2."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument('--debug', action='store_true',
                          help='show the full traceback of an error')

    def error(self, message):
        raise UserError(f'{message} (see {self.prog} --help)', ARGUMENT_STATUS)


# ----------------------------------------------------------------- argument types
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give a positive '
                                         'integer (1, 2, ...)')
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give an integer '
                                         '>= 0')
    return value


def int_in(low: int, high: int):
    """argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give an integer '
                                             f'from {low} to {high}')
        return value

    parse.__name__ = f'int_{low}_{high}'
    return parse


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan``, ``inf`` and ``-inf`` are refused:
    Python's ``float`` accepts them, and a NaN threshold or tolerance makes every
    comparison false, so a check would pass or fail without meaning)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give a finite number')
    return value


def float_in(low: float, high: float, low_open: bool = False):
    """argparse type: a finite number in [low, high] (``(low, high]`` with
    ``low_open``)."""

    def parse(text: str) -> float:
        value = finite_float(text)
        if value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(
                f'{text!r} is not allowed: give a number from {low:g} '
                f'({"excluded" if low_open else "included"}) to {high:g}')
        return value

    parse.__name__ = f'float_{low:g}_{high:g}'
    return parse


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give a number >= 0')
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} is not allowed: give a number > 0')
    return value


def _path_problem(path: str, want_dir: bool) -> Optional[str]:
    if not path:
        return 'an empty path'
    if not os.path.exists(path):
        return f'{path!r}: no such {"folder" if want_dir else "file"}'
    if want_dir and not os.path.isdir(path):
        return f'{path!r} is a file, expected a folder'
    if not want_dir and os.path.isdir(path):
        return f'{path!r} is a folder, expected a file'
    if not os.access(path, os.R_OK):
        return f'{path!r} is not readable (permission denied)'
    return None


def existing_file(text: str) -> str:
    """argparse type: a readable file (not a folder)."""
    problem = _path_problem(text, want_dir=False)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def existing_dir(text: str) -> str:
    """argparse type: an existing folder."""
    problem = _path_problem(text, want_dir=True)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def is_url(text: str) -> bool:
    return '://' in str(text)


def file_or_url(text: str) -> str:
    """argparse type: a readable file, or a URL / mmengine scheme (read later)."""
    return text if is_url(text) else existing_file(text)


# ----------------------------------------------------------------------- outputs
def same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file (also through links)."""
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(path: str, option: str, inputs: Iterable[Tuple[str, Optional[str]]] = (),
                 suffixes: Optional[Sequence[str]] = None, is_dir: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written or would destroy an
    input: raises :class:`UserError` (status 2) naming ``option`` and the value.

    Args:
        path (str): The output file (or folder, with ``is_dir``).
        option (str): How the user gave it (``'--out'``, ``'dst'``).
        inputs (iterable of (str, str)): (option, path) of every input; None and URLs
            are skipped. The output must be none of them.
        suffixes (sequence of str, optional): Allowed extensions (lower case).
        is_dir (bool): The output is a folder (created if missing).

    An existing output that is not a regular file (a device such as ``/dev/null``, a
    FIFO, a socket) is refused: writing replaces the target by renaming a new file
    over it, which would replace the device itself.
    """
    def refuse(what):
        raise UserError(f'{option} {path!r}: {what}; nothing was written',
                        ARGUMENT_STATUS)

    if not path:
        refuse('an empty path')
    special = special_file_kind(path)
    if special:
        refuse(f'is {special}, not a {"folder" if is_dir else "regular file"}: a tool '
               f'never replaces one; give a {"folder" if is_dir else "file name"}')
    if is_dir:
        if os.path.exists(path) and not os.path.isdir(path):
            refuse('is a file, expected a folder')
    elif os.path.isdir(path):
        refuse('is a folder, expected a file name')
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        refuse(f'{parent!r} is a file, so nothing can be written under it')
    if not os.access(parent, os.W_OK):
        refuse(f'the folder {parent!r} is not writable')
    for name, source in inputs:
        if source and not is_url(source) and same_file(path, source):
            refuse(f'is the same file as {name} {source!r} (writing it would destroy the '
                   'input); choose another name')
    if suffixes and not path.lower().endswith(tuple(suffixes)):
        refuse(f'the file name must end with {" or ".join(suffixes)}')


def check_outputs(outputs: Iterable[Tuple[str, Optional[str]]],
                  inputs: Iterable[Tuple[str, Optional[str]]] = ()) -> List[str]:
    """The planner of every file a tool will write, run before any work.

    Each output gets :func:`check_output`'s checks against every input (not a
    device, FIFO or socket, not a folder, writable, none of the inputs), and no two
    outputs may be one file (``--plot`` equal to ``--out``, two pictures of one
    name, a ``NAME.failed.EXT`` that is another output). Derived outputs are listed
    under the option they come from, e.g. ``('--keep-failed', 'x.failed.onnx')`` or
    ``('--workdir', 'wd/peer.onnx')``.

    Args:
        outputs (iterable of (str, str)): (option, path) of every file the tool may
            write; None entries are skipped.
        inputs (iterable of (str, str)): (option, path) of every input.

    Returns:
        list of str: The output paths, in order.
    """
    inputs = [(name, path) for name, path in inputs if path]
    seen: List[Tuple[str, str]] = []
    for option, path in outputs:
        if path is None:
            continue
        check_output(path, option, inputs=inputs)
        for other_option, other in seen:
            if same_file(path, other):
                raise UserError(
                    f'{option} {path!r}: is the same file as {other_option} {other!r} (one '
                    'output would replace the other); choose another name; nothing was '
                    'written', ARGUMENT_STATUS)
        seen.append((option, path))
    return [path for _, path in seen]


def kept_outputs(option: str, path: str, keep_failed: bool) -> List[Tuple[str, str]]:
    """(option, path) of what an :class:`~ghostnetv2_mm.utils.fileio.atomic_output`
    of ``path`` may write: ``path``, and with ``--keep-failed`` its
    ``NAME.failed.EXT``, for :func:`check_outputs`."""
    return [(option, path)] + ([('--keep-failed', failed_path(path))] if keep_failed else [])


def image_size(text: str) -> Tuple[int, int]:
    """argparse type: ``H`` or ``HxW`` (ints from 1 to :data:`MAX_IMAGE_SIDE`) ->
    (H, W)."""
    parts = str(text).lower().split('x')
    parts = parts * 2 if len(parts) == 1 else parts
    if len(parts) != 2 or not all(p.isdigit() and 0 < int(p) <= MAX_IMAGE_SIDE
                                  for p in parts):
        raise argparse.ArgumentTypeError(f'{text!r} is not a size: give H or HxW '
                                         f'(integers from 1 to {MAX_IMAGE_SIDE}, e.g. 224 '
                                         'or 256x416)')
    return int(parts[0]), int(parts[1])


def image_side(text: str) -> int:
    """argparse type: an image side, an integer from 1 to :data:`MAX_IMAGE_SIDE`."""
    return int_in(1, MAX_IMAGE_SIDE)(text)


def parse_report_args(parser: argparse.ArgumentParser, argv=None,
                      suffixes: Optional[Sequence[str]] = None,
                      inputs=None) -> argparse.Namespace:
    """``parser.parse_args(argv)`` for a tool that prints a report (Markdown tables):
    adds ``--out`` (write the report there too) and checks it before the run, not
    after it (see :func:`check_output`; ``suffixes``: the allowed extensions;
    ``inputs``: a function of the parsed arguments giving the ``(option, path)``
    inputs that ``--out`` must not be). Print the report with :func:`print_report`."""
    parser.add_argument('--out', help='also write the report (Markdown) to this file')
    args = parser.parse_args(argv)
    if args.out is not None:
        check_output(args.out, '--out', suffixes=suffixes,
                     inputs=inputs(args) if inputs else ())
    return args


def print_report(text: str, out: Optional[str] = None) -> None:
    """Print a tool's report and, given ``out`` (its ``--out``), write it there too,
    atomically: the old file stays until the complete text replaces it."""
    from .fileio import atomic_write_text
    print(text)
    if out:
        atomic_write_text(text, out)


# The images a check reads (the export tools' --check-images)
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp')


def image_files(paths: Sequence[str], option: str) -> List[str]:
    """The image files among ``paths`` (files, or folders: their images, sorted);
    a path that does not exist, or no image at all, is refused as an argument error
    naming ``option``."""
    found: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found += sorted(os.path.join(path, f) for f in os.listdir(path)
                            if f.lower().endswith(IMAGE_SUFFIXES))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise UserError(f'{option} {path!r}: no such file or folder', ARGUMENT_STATUS)
    if not found:
        raise UserError(f'{option} {list(paths)}: no images ({", ".join(IMAGE_SUFFIXES)})',
                        ARGUMENT_STATUS)
    return found


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every runner tool (train, test) shares, as OpenMMLab's tools name
    them: ``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
