#!/usr/bin/env python
"""Plot loss and metric curves of one or several runs into one PNG.

    python tools/analysis/plot_curves.py work_dirs/run_a work_dirs/run_b \\
        --keys loss coco/bbox_mAP --out curves.png

Reads mmengine's scalar logs (``<work_dir>/<timestamp>/vis_data/scalars.json``, one
JSON object per line; the newest timestamp of each work dir unless a scalars.json
path is given). Training scalars are plotted against the iteration ('step'), metrics
against the evaluation step. Without --keys: every key containing 'loss' plus every
metric found.
"""
import glob
import json
import os
import sys
from collections import defaultdict
from typing import Dict, List, Tuple

from ghostnetv2_mm.utils.cli import ToolParser, check_output, tool_main
from ghostnetv2_mm.utils.fileio import atomic_output

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.pdf', '.svg')

Series = Dict[str, List[Tuple[float, float]]]


def find_scalars(path: str) -> str:
    if os.path.isfile(path):
        return path
    candidates = sorted(glob.glob(os.path.join(path, '*', 'vis_data', 'scalars.json')))
    if not candidates:
        raise FileNotFoundError(f'no mmengine scalar log under {path!r} (expected '
                                f'{path}/<timestamp>/vis_data/scalars.json)')
    return candidates[-1]


def read_scalars(path: str) -> Series:
    series: Series = defaultdict(list)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            step = record.get('step', record.get('iter', record.get('epoch')))
            for key, value in record.items():
                if key in ('step', 'iter', 'epoch', 'lr', 'time', 'data_time', 'memory',
                           'eta') or not isinstance(value, (int, float)):
                    continue
                series[key].append((float(step), float(value)))
    return dict(series)


def default_keys(runs: List[Series]) -> List[str]:
    keys = sorted({k for run in runs for k in run})
    losses = [k for k in keys if 'loss' in k]
    metrics = [k for k in keys if 'loss' not in k and '/' in k]
    return (['loss'] if 'loss' in losses else losses[:4]) + metrics[:4]


def plot(runs: Dict[str, Series], keys: List[str], out: str) -> str:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.6), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, series in runs.items():
            points = series.get(key)
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker='o' if len(xs) < 30 else None, ms=3, label=name)
        ax.set_title(key)
        ax.set_xlabel('step')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_output(out) as target:
        fig.savefig(target.path, dpi=100)
    plt.close(fig)
    return out


@tool_main
def main(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', nargs='+', help='work dirs or scalars.json files')
    parser.add_argument('--keys', nargs='+', help='scalars to plot (default: loss + metrics)')
    parser.add_argument('--names', nargs='+', help='legend names, one per run')
    parser.add_argument('--out', default='work_dirs/curves.png')
    args = parser.parse_args(argv)
    check_output(args.out, '--out', suffixes=IMAGE_SUFFIXES,
                 inputs=[('runs', r) for r in args.runs])
    if args.names and len(args.names) != len(args.runs):
        parser.error(f'--names: got {len(args.names)} names for {len(args.runs)} runs')
    names = args.names or [os.path.basename(os.path.normpath(r)) for r in args.runs]
    runs = {name: read_scalars(find_scalars(path)) for name, path in zip(names, args.runs)}
    keys = args.keys or default_keys(list(runs.values()))
    missing = [k for k in keys if not any(k in run for run in runs.values())]
    if missing or not keys:
        available = sorted({k for run in runs.values() for k in run})
        parser.error(f'--keys: {missing or "none"} not found in the logs; available: {available}')
    print(f'saved curves of {len(runs)} run(s) ({", ".join(keys)}) to {plot(runs, keys, args.out)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
