"""What the benchmarks' reports share: a CSV that grows one finished row at a time
(never a half row), the Markdown page made from it and the scatter plot with one panel
per setting."""
import csv
import io
import math
import os.path as osp
import platform
from typing import List, Optional, Sequence

from ..utils.fileio import atomic_output, atomic_write_text


def read_rows(path: str) -> List[dict]:
    """The rows of the CSV at ``path`` ([] when it does not exist)."""
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


def append_row(path: str, row: dict, fields: Sequence[str]) -> None:
    """Add ``row`` (its ``fields``, in that order) to the CSV at ``path``, atomically.

    The file is rewritten whole through the package's atomic writer, so that a run killed
    while writing loses that row only, never leaves half of it. A file written with
    other columns is refused rather than mixed.
    """
    rows = read_rows(path)
    if rows and list(rows[0]) != list(fields):
        raise ValueError(f'{path} has the columns {list(rows[0])}, not {list(fields)}: '
                         'it was written by another benchmark or version; use another '
                         'output folder')
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
