#!/usr/bin/env python
"""Latency, throughput and peak memory of GhostNetV2 (eager, deploy, onnxruntime) and
its peers, and of whole detectors/segmentors, with this CPU's compute bound.

    # backbones side by side, plus whole models at their test sizes, ONE interleaved run
    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/benchmark.py --threads 1 \\
        --models timm-ghostnetv2 ghostnetv2 ghostnetv2-deploy ghostnetv2-onnx \\
        --sizes 224 640 --configs configs/retinanet_ghostnetv2_coco.py@800x1216 \\
        configs/deeplabv3_ghostnetv2_ade20k.py@512 --out docs/benchmarks_cpu.md

    # a config's whole model on CUDA with AMP (PyTorch backends only)
    python tools/analysis/benchmark.py --models --configs \\
        configs/retinanet_ghostnetv2_coco.py@800x1333 --device cuda --amp

Method
------
* Every model runs ``--warmup`` forwards per input size first, then ``--repeats``
  ROUNDS; in each round every model runs once, one after the other. Background load
  therefore hits all models alike, and ``ratio`` (the median over rounds of
  model time / baseline time in the same round) stays meaningful on a busy machine.
  Latency is the median over rounds, with the p10-p90 spread.
* Backends: PyTorch eager (``ghostnetv2``, timm, mmpretrain peers), PyTorch deploy
  (BatchNorm folded, ``-deploy``), onnxruntime (``-onnx``: the deploy model exported
  by ``ghostnetv2_mm.deployment``, CPU execution provider, ``--threads`` intra-op
  threads; ``-onnx-int8``: the same file after static QDQ INT8 quantisation, weights
  per channel, calibrated here on 16 random inputs: for SPEED only, see
  docs/benchmarks.md for accuracy), OpenVINO (``-openvino``, if installed).
* Whole models (``--configs CONFIG@HxW``, random weights with the toolkit's own
  initialisation): the PyTorch model's ``predict`` (network + the toolkit's
  post-processing) eager and in deploy mode, against the exported graph (network,
  box decoding and NMS; or logits, resize and argmax) on onnxruntime / OpenVINO.
  ``timm`` = the same model whose GhostNetV2 trunk is timm's ``ghostnetv2_*`` blocks
  (only for undilated backbones: timm has no dilation), the baseline when present.
* Compute bound: conv + linear MACs x 2 / the peak float32 rate of this CPU, measured
  as the best of 5 (2048 x 2048) @ (2048 x 2048) matrix products (``torch.mm``,
  oneDNN/MKL) with the same threads. No backend can be faster than this.
* Throughput: images/s at ``--throughput-batch`` (median of ``--throughput-repeats``
  timed forwards after one warm-up), 0 skips it.
* Peak memory (PyTorch backends only): the most memory the forward holds on top of
  what was allocated before it. CUDA: ``torch.cuda.max_memory_allocated``. CPU: replayed
  from the allocation/free events of ``torch.profiler`` (``profile_memory=True``).
* CPU timings use ``torch.inference_mode`` and ``--threads`` intra-op threads
  (default: all cores); CUDA timings synchronise around each forward.
* Layout: ``--memory-format contiguous|channels_last|both`` for the PyTorch backends.
  Deploy mode of ours is channels-last by design (``switch_to_deploy(channels_last=
  True)``); with ``contiguous`` it is built with ``channels_last=False``.
"""
import argparse
import os
import sys
from typing import Tuple

from ghostnetv2_mm.benchmarks.catalogue import names_help
from ghostnetv2_mm.benchmarks.speed import PEERS, row_name, run_speed_benchmark
from ghostnetv2_mm.benchmarks.speed_report import plot_latency_vs_top1, write_table
from ghostnetv2_mm.models import ARCH_WIDTHS
from ghostnetv2_mm.utils.cli import (ToolParser, check_outputs, image_size, non_negative_int,
                                     positive_int, tool_main)


def parse_config_spec(text: str) -> Tuple[str, Tuple[int, int]]:
    """``CONFIG@HxW`` (or ``CONFIG@S``) -> (config path, (H, W))."""
    if '@' not in text:
        raise argparse.ArgumentTypeError(f'bad --configs entry {text!r}: use CONFIG@HxW')
    path, size = text.rsplit('@', 1)
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f'--configs {text!r}: {path} not found')
    return path, image_size(size)


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0], epilog=names_help(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--models', nargs='*', default=list(PEERS), choices=PEERS, type=row_name,
                        metavar='NAME', help=f'backbones to compare: {", ".join(PEERS)}: '
                        'networks of the catalogue (below; a GhostNet-family name at '
                        '--arch) and ways of running one (timm-, -deploy, -onnx, '
                        '-onnx-int8, -openvino; these also add those backends to '
                        '--configs); none: only --configs')
    parser.add_argument('--configs', nargs='+', type=parse_config_spec, default=[],
                        metavar='CONFIG@HxW', help='whole models to time at that size')
    parser.add_argument('--baseline', default=None, choices=PEERS, metavar='NAME',
                        help='the backbone every ratio is relative to, one of --models '
                        '(default: timm-ghostnetv2 when timed; for --configs the '
                        'timm-trunk model, else eager)')
    parser.add_argument('--sizes', type=image_size, nargs='*',
                        default=[(224, 224), (640, 640), (800, 1333)],
                        help='backbone input sizes, H or HxW (default: 224 640 800x1333)')
    parser.add_argument('--batch', type=positive_int, default=1, help='latency batch size')
    parser.add_argument('--repeats', type=positive_int, default=20, help='timed rounds per size')
    parser.add_argument('--warmup', type=non_negative_int, default=3)
    parser.add_argument('--throughput-batch', type=non_negative_int, default=8,
                        help='batch for images/s (0: skip)')
    parser.add_argument('--throughput-repeats', type=positive_int, default=3)
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--memory-format', default='channels_last',
                        choices=('contiguous', 'channels_last', 'both'))
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='CPU intra-op threads, PyTorch and onnxruntime (default: all)')
    parser.add_argument('--out', help='write the table: .md (Markdown) or .csv')
    parser.add_argument('--plot', help='PNG of latency (first size) against published '
                        'ImageNet top-1, one point per backbone (matplotlib)')
    args = parser.parse_args(argv)
    if args.baseline is None:
        args.baseline = 'timm-ghostnetv2'
    elif args.baseline not in args.models:  # it would be ignored without a word
        parser.error(f'argument --baseline: {args.baseline!r} is not timed; allowed: one '
                     'of --models (' + (', '.join(args.models) or 'none given') + ')')
    if not args.configs and not (args.models and args.sizes):
        parser.error('nothing to time: give --models and --sizes, or --configs')
    # both files checked before the (long) run: not an input, not each other
    check_outputs([('--out', args.out), ('--plot', args.plot)],
                  [('--configs', path) for path, _ in args.configs])
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    rows, table = run_speed_benchmark(
        arch=args.arch, models=args.models, configs=args.configs, baseline=args.baseline,
        sizes=args.sizes, batch=args.batch, repeats=args.repeats, warmup=args.warmup,
        throughput_batch=args.throughput_batch,
        throughput_repeats=args.throughput_repeats, memory=not args.no_memory,
        device=args.device, amp=args.amp, memory_format=args.memory_format,
        threads=args.threads)
    print(table)
    if args.out:
        write_table(args.out, rows, table)
        print(f'wrote {args.out}', file=sys.stderr, flush=True)
    if args.plot:
        plot_latency_vs_top1(rows, args.plot)
        print(f'wrote {args.plot}', file=sys.stderr, flush=True)
    return rows


if __name__ == '__main__':
    main()
