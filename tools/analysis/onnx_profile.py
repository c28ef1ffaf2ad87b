#!/usr/bin/env python
"""ONNX files side by side on onnxruntime: interleaved timing and the op breakdown.

    # this project's backbone export against timm's peers, 1 thread, batch 1
    python tools/deployment/export_onnx.py --out-indices 10 --out work_dirs/bb.onnx \\
        --check-sizes 224
    python tools/analysis/onnx_profile.py --onnx ours=work_dirs/bb.onnx \\
        --peers ghostnetv2-1.0x mobilenetv3-large ghostnet-1.0x mobilenetv2 \\
        efficientnet-b0 --sizes 224 640 --rounds 40

Each ``--onnx LABEL=PATH`` file and each peer (timm's ``forward_features``, random
weights, exported with dynamic N, H, W into ``--workdir``) is timed in interleaved
rounds (one run of each per round, rotating order) at every size; the table gives
medians and the median of per-round ratios to the first model. Then onnxruntime's
profiler gives each model's kernel time by op type at ``--profile-size``: Conv
against everything else, with node counts.

``--runtimes onnxruntime openvino ncnn`` times the same files on each runtime (ncnn:
converted with pnnx per size, in every ``--precisions`` storage: fp32, fp16, bf16),
at every ``--threads`` count; ``--clock thread`` applies to the 1-thread runs of
onnxruntime and ncnn (the others use the wall clock). A summary table at the end
has one column per runtime, precision and thread count.

    python tools/analysis/onnx_profile.py --onnx ours=work_dirs/bb.onnx \
        --peers mobilenetv3-large timm-ghostnet mobilenetv2 efficientnet-b0 \
        --runtimes ncnn --precisions fp32 fp16 bf16 --threads 1 2 --sizes 224 640
"""
import argparse
import os
import statistics
import tempfile

from ghostnetv2_mm.benchmarks.catalogue import NETWORKS, names_help, network_names
from ghostnetv2_mm.benchmarks.onnx_profile import (export_timm_peer, format_breakdown,
                                                   op_breakdown, ratio_to, time_interleaved)
from ghostnetv2_mm.benchmarks.runtimes import PRECISIONS, RUNTIMES, check_runtime
from ghostnetv2_mm.benchmarks.speed_report import plot_latency_vs_top1
from ghostnetv2_mm.utils.cli import (ToolParser, check_output, check_outputs, float_in,
                                     image_size, non_negative_int, positive_int, tool_main)


def labelled_path(text: str):
    label, sep, path = text.partition('=')
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f'{text!r}: expected LABEL=PATH')
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f'{text!r}: no such file {path!r}')
    return label, path


def labelled_top1(text: str):
    label, sep, value = text.partition('=')
    if not sep or not label:
        raise argparse.ArgumentTypeError(f'{text!r}: expected LABEL=ACC')
    try:
        return label, float_in(0, 100)(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f'{text!r}: ACC {exc}') from None


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0], epilog=names_help())
    parser.add_argument('--onnx', type=labelled_path, nargs='*', default=[],
                        metavar='LABEL=PATH', help='ONNX files to compare (first: baseline)')
    parser.add_argument('--peers', nargs='*', default=[], type=network_names,
                        metavar='NAME', help="networks of the catalogue (below), timm's "
                        'builds, exported with dynamic N, H, W')
    parser.add_argument('--sizes', type=image_size, nargs='+', default=[(224, 224)])
    parser.add_argument('--rounds', type=positive_int, default=40)
    parser.add_argument('--warmup', type=non_negative_int, default=5)
    parser.add_argument('--threads', type=positive_int, nargs='+', default=[1],
                        help='thread counts to time (each a separate table)')
    parser.add_argument('--runtimes', nargs='+', default=['onnxruntime'], choices=RUNTIMES,
                        help='runtimes to time the files on (ncnn: converted with pnnx)')
    parser.add_argument('--precisions', nargs='+', default=['fp32'],
                        choices=PRECISIONS['ncnn'], help='ncnn storage precisions '
                        '(onnxruntime and OpenVINO run fp32 only)')
    parser.add_argument('--clock', choices=('wall', 'thread'), default='wall',
                        help="'thread': CPU time of the calling thread (1 thread only), "
                        'which leaves out waiting for a core on a shared machine')
    parser.add_argument('--batch', type=positive_int, default=1)
    parser.add_argument('--profile-size', type=image_size, default=(224, 224))
    parser.add_argument('--profile-runs', type=non_negative_int, default=20,
                        help='profiled runs per model (0: no breakdown)')
    parser.add_argument('--profile-stat', choices=('mean', 'min'), default='mean',
                        help="each node's kernel time over the profiled runs: mean, or "
                        'min (leaves out most of the slices a loaded machine gives '
                        'other processes)')
    parser.add_argument('--top1', type=labelled_top1, nargs='*', default=[],
                        metavar='LABEL=ACC', help='published top-1 of an --onnx model, '
                        'for the table and the plot (the peers carry theirs)')
    parser.add_argument('--plot', help='write the latency-accuracy plot (onnxruntime '
                        'times at the first size) to this PNG')
    parser.add_argument('--workdir', help='where the peers are written (default: a '
                        'temporary folder)')
    args = parser.parse_args(argv)
    if not args.onnx and not args.peers:
        parser.error('nothing to compare: give --onnx LABEL=PATH and/or --peers')
    labels = [label for label, _ in args.onnx]
    for name in set(labels + list(args.peers)):
        if (labels + list(args.peers)).count(name) > 1:  # one would replace the other
            parser.error(f'argument --onnx: the label {name!r} is given twice (as '
                         '--onnx labels or peer names); give each model its own label')
    for label, _ in args.top1:
        if label not in labels:  # it would be dropped without a word
            parser.error(f'argument --top1: {label!r} is no --onnx label; allowed: '
                         + (', '.join(labels) or 'none (no --onnx given)'))
    if args.plot:
        # the plot needs points with a top-1: refuse now, not after the whole run
        if not args.top1 and not args.peers:
            parser.error('argument --plot: nothing to plot: no model has a top-1; give '
                         '--top1 LABEL=ACC for an --onnx model, or --peers (they carry '
                         'their published top-1)')
        check_output(args.plot, '--plot', suffixes=('.png',))
    if 'ncnn' in args.runtimes and args.batch != 1:
        parser.error(f'--batch {args.batch} with --runtimes ncnn: ncnn runs batch 1 only')
    for runtime in args.runtimes:
        try:
            check_runtime(runtime)
        except ImportError as exc:
            parser.error(f'--runtimes {runtime}: {exc}')
    # every file written (the peers' exports in --workdir, the plot) is checked
    # against the --onnx inputs and each other before the run
    if args.workdir:
        check_output(args.workdir, '--workdir', is_dir=True)
    check_outputs([('--workdir', peer_file(args.workdir, p)) for p in args.peers
                   if args.workdir] + [('--plot', args.plot)],
                  [(f'--onnx {label}', path) for label, path in args.onnx])
    return args


def peer_file(workdir: str, peer: str) -> str:
    return os.path.join(workdir, f'{peer}.onnx')


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or tmp
        paths = dict(args.onnx)
        top1 = {label: (acc, 'given') for label, acc in args.top1}
        for peer in args.peers:
            network = NETWORKS[peer]
            paths[peer] = export_timm_peer(network.timm, peer_file(workdir, peer))
            top1[peer] = (network.top1, network.top1_source)
        baseline = next(iter(paths))
        settings = [(runtime, precision, threads) for runtime in args.runtimes
                    for precision in (args.precisions if runtime == 'ncnn' else ['fp32'])
                    for threads in args.threads]
        summary = {}
        for runtime, precision, threads in settings:
            # the thread clock only where the graph runs on the calling thread
            clock = args.clock if threads == 1 and runtime != 'openvino' else 'wall'
            setting = f'{runtime} {precision}, {threads} thread(s)'
            print(f'\n{setting}, batch {args.batch}, {args.rounds} interleaved rounds, '
                  f'{clock} clock; ratio = median of per-round ratios to {baseline}')
            for h, w in args.sizes:
                times = time_interleaved(paths, size=(h, w), batch=args.batch,
                                         rounds=args.rounds, warmup=args.warmup,
                                         threads=threads, clock=clock, runtime=runtime,
                                         precision=precision, workdir=workdir)
                ratios = ratio_to(times, baseline)
                print(f'\n| {h}x{w} | median ms | vs {baseline} | ImageNet top-1 |')
                print('|---|---|---|---|')
                for name, t in times.items():
                    acc, source = top1.get(name, (None, ''))
                    shown = f'{acc} ({source})' if acc is not None else ''
                    median = statistics.median(t)
                    print(f'| {name} | {median:.2f} | {ratios[name]:.2f} | {shown} |')
                    summary.setdefault(name, {})[(setting, h, w)] = (median, ratios[name])
                    if (runtime, precision, threads) == settings[0]:
                        rows.append(dict(model=name, size=f'{h}x{w}', median_ms=median,
                                         top1=acc, layout=runtime, batch=args.batch))
        if len(settings) > 1:
            columns = [(s, h, w) for s in dict.fromkeys(f'{r} {p}, {t} thread(s)'
                                                      for r, p, t in settings)
                       for h, w in args.sizes]
            print(f'\nsummary: median ms (ratio to {baseline} in the same rounds)\n')
            print('| model | top-1 | ' + ' | '.join(f'{s} {h}x{w}' for s, h, w in columns)
                  + ' |')
            print('|---|---|' + '---|' * len(columns))
            for name, cells in summary.items():
                acc = top1.get(name, (None, ''))[0]
                print(f"| {name} | {acc if acc is not None else ''} | " + ' | '.join(
                    f'{cells[c][0]:.2f} ({cells[c][1]:.2f})' for c in columns) + ' |')
        if args.profile_runs and 'onnxruntime' in args.runtimes:
            h, w = args.profile_size
            print(f'\nkernel time per run by op type at {h}x{w} (onnxruntime profiler, '
                  f'{args.profile_runs} runs, {args.profile_stat} per node; ms, nodes in '
                  'parentheses):')
            for name, path in paths.items():
                breakdown = op_breakdown(path, size=(h, w), batch=args.batch,
                                         runs=args.profile_runs, threads=args.threads[0],
                                         statistic=args.profile_stat)
                print(format_breakdown(name, breakdown))
    if args.plot:
        plot_latency_vs_top1(rows, args.plot)
        print(f'\nplot: {args.plot} (onnxruntime latency at the first size against '
              'published top-1)')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
