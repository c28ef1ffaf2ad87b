#!/usr/bin/env python
"""Latency, throughput and peak memory of GhostNetV2 (eager and deploy) and its peers.

    # backbones side by side (ours eager + deploy, timm GhostNetV1/V2, mmpretrain
    # MobileNetV2 / MobileNetV3-Large / ResNet-18), CPU float32, batch 1
    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/benchmark.py \\
        --sizes 224 640 800x1333 --repeats 30 --out docs/benchmarks_cpu.md

    # a config's whole model (tensor mode), eager vs. deploy backbone, CUDA + AMP
    python tools/analysis/benchmark.py configs/retinanet_ghostnetv2_coco.py \\
        --device cuda --amp --sizes 800x1333

Method
------
* Every model runs ``--warmup`` forwards per input size first, then ``--repeats``
  ROUNDS; in each round every model runs once, one after the other. Background load
  therefore hits all models alike, and ``ratio`` (the median over rounds of
  model time / baseline time in the same round) stays meaningful on a busy machine.
  Latency is the median over rounds, with the p10-p90 spread.
* Throughput: images/s at ``--throughput-batch`` (median of ``--throughput-repeats``
  timed forwards after one warm-up), 0 skips it.
* Peak memory: the most memory the forward holds on top of what was allocated
  before it (activations and workspaces, not weights). CUDA:
  ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. CPU: torch's
  CPU allocations are invisible to ``tracemalloc`` and the process RSS only ever grows
  (and is shared by all models of the run), so the peak is replayed from the
  allocation/free events that ``torch.profiler`` records with ``profile_memory=True``
  during one batch-1 forward.
* CPU timings use ``torch.inference_mode`` and ``--threads`` intra-op threads
  (default: all cores); CUDA timings synchronise around each forward.
* Layout: ``--memory-format contiguous|channels_last|both``. Deploy mode of ours is
  channels-last by design (``switch_to_deploy(channels_last=True)``); with
  ``contiguous`` it is built with ``channels_last=False``.
"""
import argparse
import csv
import io
import math
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ghostnetv2_mm.models import ARCH_WIDTHS, GhostNetV2  # noqa: E402

TIMM_V2 = {'1.0x': 'ghostnetv2_100', '1.3x': 'ghostnetv2_130', '1.6x': 'ghostnetv2_160'}
PEERS = ('ghostnetv2', 'ghostnetv2-deploy', 'timm-ghostnetv2', 'timm-ghostnet',
         'mobilenetv2', 'mobilenetv3-large', 'resnet18')
# published ImageNet-1k top-1 (%), see docs/benchmarks.md for the sources
TOP1 = {'ghostnetv2': 75.3, 'ghostnetv2-deploy': 75.3, 'timm-ghostnetv2': 75.3,
        'timm-ghostnet': 73.9, 'mobilenetv2': 71.86, 'mobilenetv3-large': 74.04,
        'resnet18': 69.90}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ models
class _Features(nn.Module):
    """Calls a model's feature extractor (timm's ``forward_features``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class _TensorMode(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


def build_peer(name: str, arch: str, channels_last: bool) -> Optional[nn.Module]:
    """The backbone called ``name`` (None when its package is missing).

    All produce the full trunk up to the last stride-32 features: ours with every
    layer run (out_indices up to layer 10, the 960-channel conv), timm's
    ``forward_features`` (which ends with the same conv).
    """
    if name in ('ghostnetv2', 'ghostnetv2-deploy'):
        model = GhostNetV2(arch, out_indices=(3, 5, 7, 9, 10)).eval()
        if name.endswith('deploy'):
            model.switch_to_deploy(channels_last=channels_last)
        return model
    if name.startswith('timm-'):
        try:
            import timm
        except ImportError as exc:
            log(f'timm cannot be imported: {exc}')
            return None
        timm_name = TIMM_V2[arch] if name == 'timm-ghostnetv2' else 'ghostnet_100'
        return _Features(timm.create_model(timm_name, pretrained=False)).eval()
    try:
        from mmpretrain.models import MobileNetV2, MobileNetV3, ResNet
    except ImportError as exc:
        log(f'mmpretrain cannot be imported: {exc}')
        return None
    if name == 'mobilenetv2':
        model = MobileNetV2(widen_factor=1.0, out_indices=(7,))
    elif name == 'mobilenetv3-large':
        model = MobileNetV3(arch='large', out_indices=(16,))
    elif name == 'resnet18':
        model = ResNet(depth=18, out_indices=(3,))
    else:
        raise ValueError(f'unknown model {name!r}; allowed: {", ".join(PEERS)}')
    model.eval()  # (mmpretrain's train() overrides return None, so no chaining)
    return model


def build_config_models(config: str, channels_last: bool) -> Dict[str, nn.Module]:
    import copy
    from mmengine.config import Config
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    model = build_model_from_config(cfg)
    model.eval()
    deployed = copy.deepcopy(model)
    backbone = getattr(deployed, 'backbone', None)
    if not hasattr(backbone, 'switch_to_deploy'):
        raise SystemExit(f'{config}: its backbone ({type(backbone).__name__}) has no '
                         'switch_to_deploy')
    backbone.switch_to_deploy(channels_last=channels_last)
    name = os.path.splitext(os.path.basename(config))[0]
    return {name: _TensorMode(model), f'{name} (deploy backbone)': _TensorMode(deployed)}


# --------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn: Callable, x: torch.Tensor, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn(x)
    _sync(device)
    return time.perf_counter() - start


def percentile(values: List[float], q: float) -> float:
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def peak_memory(fn: Callable, x: torch.Tensor, device: torch.device) -> float:
    """Peak bytes held by one forward on top of what was allocated before it."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(x)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x)
    timeline = []
    for event in prof.events():
        if event.name == '[memory]':  # frees (and a few allocations) outside any op
            timeline.append((event.time_range.start, event.cpu_memory_usage))
        elif event.self_cpu_memory_usage:
            timeline.append((event.time_range.start, event.self_cpu_memory_usage))
    current = peak = 0
    for _, nbytes in sorted(timeline, key=lambda item: item[0]):
        current += nbytes
        peak = max(peak, current)
    return float(peak)


def parse_size(text: str) -> Tuple[int, int]:
    parts = text.lower().replace(',', 'x').split('x')
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f'bad size {text!r}: use H or HxW') from None
    if len(parts) != 2 or h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f'bad size {text!r}: use H or HxW')
    return h, w


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', help='benchmark this config\'s whole model '
                        '(tensor mode), eager vs. deploy backbone, instead of backbones')
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--models', nargs='+', default=list(PEERS), choices=PEERS,
                        metavar='NAME', help=f'backbones to compare: {", ".join(PEERS)}')
    parser.add_argument('--baseline', default='timm-ghostnetv2',
                        help='the model every ratio is relative to (default: timm '
                        'ghostnetv2; the eager config model in config mode)')
    parser.add_argument('--sizes', type=parse_size, nargs='+',
                        default=[(224, 224), (640, 640), (800, 1333)],
                        help='input sizes, H or HxW (default: 224 640 800x1333)')
    parser.add_argument('--batch', type=int, default=1, help='latency batch size')
    parser.add_argument('--repeats', type=int, default=20, help='timed rounds per size')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--throughput-batch', type=int, default=8,
                        help='batch for images/s (0: skip)')
    parser.add_argument('--throughput-repeats', type=int, default=3)
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--memory-format', default='channels_last',
                        choices=('contiguous', 'channels_last', 'both'))
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU intra-op threads (default: all cores)')
    parser.add_argument('--out', help='write the table: .md (Markdown) or .csv')
    parser.add_argument('--plot', help='PNG of latency (first size) against published '
                        'ImageNet top-1, one point per backbone (matplotlib)')
    args = parser.parse_args(argv)
    for name in ('batch', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1')
    if args.throughput_batch < 0 or args.warmup < 0 or args.throughput_repeats < 1:
        parser.error('--throughput-batch, --warmup must be >= 0, --throughput-repeats >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    formats = (['contiguous', 'channels_last'] if args.memory_format == 'both'
               else [args.memory_format])

    # build
    models: Dict[str, Tuple[nn.Module, bool]] = {}
    for fmt in formats:
        cl = fmt == 'channels_last'
        suffix = ' [CL]' if cl and len(formats) > 1 else ''
        if args.config:
            built = build_config_models(args.config, cl)
        else:
            built = {}
            for name in args.models:
                model = build_peer(name, args.arch, cl)
                if model is None:
                    log(f'skipping {name}: its package is not installed')
                    continue
                built[name] = model
        for name, model in built.items():
            model = model.to(device)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            models[name + suffix] = (model, cl)
    if args.config:
        baseline = next(iter(models))
    else:
        baseline = args.baseline if args.baseline in models else next(
            (n for n in models if n.startswith(args.baseline)), None)
    names = list(models)
    log(f'{len(names)} models: {", ".join(names)}; baseline: {baseline}; device '
        f'{device}, {"AMP " + str(amp_dtype).split(".")[-1] if args.amp else "float32"}, '
        f'{torch.get_num_threads()} threads')

    def runner(model: nn.Module, cl: bool):
        def run(x):
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype,
                                                        enabled=args.amp):
                return model(x)
        return run

    rows = []
    for s_idx, (h, w) in enumerate(args.sizes):
        x = torch.randn(args.batch, 3, h, w, device=device)
        runs = {n: runner(*models[n]) for n in names}
        log(f'[size {s_idx + 1}/{len(args.sizes)}] {h}x{w}: warm-up')
        for n in names:
            for _ in range(args.warmup):
                runs[n](x)
        times: Dict[str, List[float]] = {n: [] for n in names}
        for r in range(args.repeats):
            for n in names:
                times[n].append(_timed(runs[n], x, device))
            if (r + 1) % max(1, args.repeats // 10) == 0 or r + 1 == args.repeats:
                log(f'[size {s_idx + 1}/{len(args.sizes)}] {h}x{w}: round '
                    f'{r + 1}/{args.repeats}')
        for n in names:
            t = times[n]
            row = dict(model=n, size=f'{h}x{w}', batch=args.batch,
                       layout='channels_last' if models[n][1] else 'contiguous',
                       median_ms=statistics.median(t) * 1e3,
                       p10_ms=percentile(t, 0.1) * 1e3, p90_ms=percentile(t, 0.9) * 1e3)
            if baseline is not None:
                row['ratio'] = statistics.median(
                    a / b for a, b in zip(t, times[baseline]))
                row['speedup'] = 1.0 / row['ratio']
            if not args.no_memory:
                row['peak_mem_mb'] = peak_memory(runs[n], x, device) / 2 ** 20
            if args.throughput_batch:
                xb = torch.randn(args.throughput_batch, 3, h, w, device=device)
                runs[n](xb)
                tb = [_timed(runs[n], xb, device) for _ in range(args.throughput_repeats)]
                row['throughput_img_s'] = args.throughput_batch / statistics.median(tb)
            if not args.config:
                row['top1'] = TOP1.get(n.replace(' [CL]', ''))
            rows.append(row)
            log(f'  {n:<28} {row["median_ms"]:9.2f} ms'
                + (f'  x{row["speedup"]:.2f} vs {baseline}' if baseline else ''))
    table = format_table(rows, args, baseline, device, amp_dtype)
    print(table)
    if args.out:
        write_out(args.out, rows, table)
        log(f'wrote {args.out}')
    if args.plot and not args.config:
        plot(rows, args.plot)
        log(f'wrote {args.plot}')
    return rows


def plot(rows, path: str) -> None:
    """Latency at the first measured size against published top-1."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    first = rows[0]['size']
    points = [r for r in rows if r['size'] == first and r.get('top1') is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in points:
        ours = r['model'].startswith('ghostnetv2')
        ax.scatter(r['median_ms'], r['top1'], s=60 if ours else 40,
                   marker='*' if ours else 'o', color='C3' if ours else 'C0')
        ax.annotate(f"{r['model']} ({r['layout'].replace('channels_last', 'CL')})",
                    (r['median_ms'], r['top1']), textcoords='offset points',
                    xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f'latency, ms (median, batch {rows[0]["batch"]}, input {first})')
    ax.set_ylabel('ImageNet-1k top-1, % (published)')
    ax.set_title('CPU latency vs. accuracy (this machine)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


COLUMNS = [('model', 'model', '{}'), ('size', 'input', '{}'), ('layout', 'layout', '{}'),
           ('median_ms', 'latency ms (median)', '{:.2f}'),
           ('p10_ms', 'p10', '{:.2f}'), ('p90_ms', 'p90', '{:.2f}'),
           ('speedup', 'speed vs baseline', '{:.2f}x'),
           ('throughput_img_s', 'img/s @batch', '{:.1f}'),
           ('peak_mem_mb', 'peak MB', '{:.1f}'), ('top1', 'top-1', '{}')]


def format_table(rows, args, baseline, device, amp_dtype) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r and r[c[0]] is not None for r in rows)]
    header = [c[1] for c in cols]
    lines = [header]
    for r in rows:
        lines.append([fmt.format(r[k]) if r.get(k) is not None else '-' for k, _, fmt in cols])
    out = io.StringIO()
    out.write(f'device {device}, {"AMP " + str(amp_dtype).split(".")[-1] if args.amp else "float32"}, '
              f'batch {args.batch} (throughput batch {args.throughput_batch}), '
              f'{torch.get_num_threads()} threads, {args.repeats} interleaved rounds; '
              f'speed = median over rounds of baseline time / model time, '
              f'baseline {baseline}\n\n')
    out.write('| ' + ' | '.join(header) + ' |\n')
    out.write('|' + '|'.join('---' for _ in header) + '|\n')
    for line in lines[1:]:
        out.write('| ' + ' | '.join(line) + ' |\n')
    return out.getvalue()


def write_out(path: str, rows, table: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith('.csv'):
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    else:
        with open(path, 'w') as f:
            f.write(table)


if __name__ == '__main__':
    main()
