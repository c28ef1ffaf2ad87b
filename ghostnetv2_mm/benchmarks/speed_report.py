"""Tables and plots of :func:`.speed.run_speed_benchmark`'s rows."""
import csv
import io
from typing import List

import torch

from ..utils.fileio import atomic_output, atomic_write_text

COLUMNS = [('model', 'model', '{}'), ('size', 'input', '{}'), ('layout', 'backend / layout', '{}'),
           ('median_ms', 'latency ms (median)', '{:.2f}'),
           ('p10_ms', 'p10', '{:.2f}'), ('p90_ms', 'p90', '{:.2f}'),
           ('ratio', 'time vs baseline', '{:.3f}x'),
           ('gmacs', 'GMACs', '{:.3f}'), ('bound_ms', 'compute bound ms', '{:.2f}'),
           ('bound_ratio', 'bound vs baseline', '{:.3f}x'),
           ('throughput_img_s', 'img/s @batch', '{:.1f}'),
           ('peak_mem_mb', 'peak MB', '{:.1f}'), ('top1', 'top-1', '{}')]


def format_table(rows: List[dict], *, device, amp: bool, amp_dtype, batch: int,
                 throughput_batch: int, repeats: int, flops: float) -> str:
    """A Markdown table of ``rows`` (the columns some row has), after one line that
    says how it was measured."""
    device = torch.device(device)
    cols = [c for c in COLUMNS if any(c[0] in r and r[c[0]] is not None for r in rows)]
    header = [c[1] for c in cols]
    out = io.StringIO()
    out.write(f'device {device}, {"AMP " + str(amp_dtype).split(".")[-1] if amp else "float32"}, '
              f'batch {batch} (throughput batch {throughput_batch}), '
              f'{torch.get_num_threads()} threads, {repeats} interleaved rounds; '
              'time vs baseline = median over rounds of model time / baseline time '
              '(baseline: timm-ghostnetv2 for backbones, the timm-trunk model, else the '
              'eager one, for whole models)')
    if device.type == 'cpu':
        out.write(f'; compute bound = 2 x MACs / {flops / 1e9:.1f} GFLOP/s (peak of a '
                  '2048^3 float32 GEMM here)')
    out.write('\n\n| ' + ' | '.join(header) + ' |\n')
    out.write('|' + '|'.join('---' for _ in header) + '|\n')
    for r in rows:
        out.write('| ' + ' | '.join(fmt.format(r[k]) if r.get(k) is not None else '-'
                                    for k, _, fmt in cols) + ' |\n')
    return out.getvalue()


def write_table(path: str, rows: List[dict], table: str) -> None:
    """``rows`` as CSV when ``path`` ends with .csv, else the Markdown ``table``."""
    if path.endswith('.csv'):
        keys = list(dict.fromkeys(k for r in rows for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
        table = out.getvalue()
    atomic_write_text(table, path)


def plot_latency_vs_top1(rows: List[dict], path: str) -> None:
    """Latency at the first measured size against published top-1 (rows without a
    top-1 are left out)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in rows if r.get('top1') is not None]
    first = rows[0]['size']
    points = [r for r in rows if r['size'] == first]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    seen_top1 = []
    for r in points:
        ours = r['model'].startswith('ghostnetv2')
        ax.scatter(r['median_ms'], r['top1'], s=60 if ours else 40,
                   marker='*' if ours else 'o', color='C3' if ours else 'C0')
        # models of equal top-1 (the same network twice) get their labels stacked
        below = seen_top1.count(r['top1'])
        seen_top1.append(r['top1'])
        ax.annotate(f"{r['model']} ({r['layout'].replace('channels_last', 'CL')})",
                    (r['median_ms'], r['top1']), textcoords='offset points',
                    xytext=(5, 4 - 12 * below), fontsize=8)
    ax.set_xlabel(f'latency, ms (median, batch {rows[0]["batch"]}, input {first})')
    ax.set_ylabel('ImageNet-1k top-1, % (published)')
    ax.set_title('CPU latency vs. accuracy (this machine)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_output(path) as out:
        fig.savefig(out.path, dpi=120)
    plt.close(fig)
