"""What the benchmarks' reports share: a CSV that grows one finished row at a time
(never a half row), the Markdown page made from it and the scatter plot with one panel
per setting."""
import csv
import io
import math
import os.path as osp
import platform
from typing import List, Optional, Sequence

from ..errors import UserError
from ..utils.fileio import atomic_output, atomic_write_text



def read_rows(path: str, fields: Optional[Sequence[str]] = None) -> List[dict]:
    """The rows of the CSV at ``path`` ([] when it does not exist or is empty).

    A file that is no CSV table (not UTF-8 text, a broken quote), whose rows do not
    have the header's number of cells, or (with ``fields``) whose header is not
    ``fields`` is refused with one line naming it (:class:`UserError`): a benchmark
    resuming from it would otherwise stop on a KeyError far from the cause, or mix
    its rows with another table's.

    Args:
        path (str): The CSV file.
        fields (sequence of str, optional): The columns the file must have, in order.
    """
    if not osp.isfile(path):
        return []
    advice = 'move it away or choose another output folder'
    try:
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f'{path} is not a CSV table of results ({type(exc).__name__}: '
                        f'{" ".join(str(exc).split())[:200]}); {advice}') from None
    if not header:
        return []
    if fields is not None and header != list(fields):
        missing = [k for k in fields if k not in header]
        raise UserError(f'{path} has the columns {", ".join(header)[:300]}, not this '
                        'benchmark\'s' + (f' (missing: {", ".join(missing)})' if missing
                                          else ' (other order or extra ones)')
                        + f': it was written by another benchmark or version; {advice}')
    for line, row in enumerate(rows, 2):
        if None in row or None in row.values():  # more or fewer cells than the header
            cells = (sum(v is not None for k, v in row.items() if k is not None)
                     + len(row.get(None) or []))
            raise UserError(f'{path} line {line}: {cells} cells where the header has '
                            f'{len(header)}; the file is damaged or not this '
                            f'benchmark\'s; {advice}')
    return rows


def append_row(path: str, row: dict, fields: Sequence[str]) -> None:
    """Add ``row`` (its ``fields``, in that order) to the CSV at ``path``, atomically.

    The file is rewritten whole through the package's atomic writer, so that a run killed
    while writing loses that row only, never leaves half of it. A file written with
    other columns is refused rather than mixed.
    """
    rows = read_rows(path, fields)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    writer.writerow({k: row.get(k, '') for k in fields})
    atomic_write_text(out.getvalue(), path)


def write_results_page(path: str, *, title: str, intro: str, body: Sequence[str]) -> None:
    """Write a benchmark's Markdown page of results to ``path``, atomically: the
    ``title``, the ``intro`` paragraph (what made the page and what its numbers mean;
    its line breaks and indentation are folded into one line), the ``body`` lines and
    the machine and torch version the rows were measured with."""
    import torch
    lines = [f'# {title}', '', ' '.join(intro.split()), '', *body,
             f'Machine: {platform.processor() or platform.machine()}, '
             f'torch {torch.__version__}.', '']
    atomic_write_text('\n'.join(lines), path)


def scatter_panels(panels: Sequence[dict], path: str, columns: int = 2) -> None:
    """One scatter panel per entry of ``panels``, saved to ``path``.

    Each panel is a dict with ``title``, ``xlabel``, ``ylabel``, optional ``xlog``
    (log x axis) and ``points``: dicts with ``x``, ``y``, ``label``, optional
    ``highlight`` (drawn as a red star, the highlighted points joined by a line in x
    order) and optional ``yrange`` ((low, high): an error bar).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter
    if not panels:
        return
    cols = min(columns, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4.2 * nrows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        points = sorted(panel['points'], key=lambda p: p['x'])
        line = [p for p in points if p.get('highlight')]
        if len(line) > 1:
            ax.plot([p['x'] for p in line], [p['y'] for p in line], '-', color='tab:red',
                    alpha=0.5, zorder=1)
        for p in points:
            color = 'tab:red' if p.get('highlight') else 'tab:blue'
            yrange: Optional[tuple] = p.get('yrange')
            if yrange is not None:
                ax.errorbar([p['x']], [p['y']], yerr=[[p['y'] - yrange[0]],
                                                      [yrange[1] - p['y']]],
                            fmt='none', ecolor=color, alpha=0.6, capsize=3, zorder=1)
            ax.scatter([p['x']], [p['y']], s=50, zorder=2, color=color,
                       marker='*' if p.get('highlight') else 'o')
            ax.annotate(p['label'], (p['x'], p['y']), textcoords='offset points',
                        xytext=(4, 4), fontsize=8)
        if panel.get('xlog'):
            ax.set_xscale('log')
            ax.xaxis.set_major_formatter(FormatStrFormatter('%g'))
            ax.xaxis.set_minor_formatter(FormatStrFormatter('%g'))
            ax.tick_params(axis='x', which='minor', labelsize=7)
        ax.set_xlabel(panel['xlabel'])
        ax.set_ylabel(panel['ylabel'])
        ax.set_title(panel['title'], fontsize=10)
        ax.grid(True, which='both', alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    fig.tight_layout()
    with atomic_output(path) as out:
        fig.savefig(out.path, dpi=110)
    plt.close(fig)
