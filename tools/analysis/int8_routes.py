#!/usr/bin/env python
"""INT8 routes against float32 on the CPU: onnxruntime placements and PT2E.

    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/int8_routes.py --sizes 224 640 \\
        --pt2e-sizes 224 --threads 1 --rounds 15 --out work_dirs/int8_routes.md

Our backbone (GhostNetV2-1.0x to the 960-channel conv, deploy form) and the timm
peers (MobileNetV3-Large, GhostNet V1; ``forward_features``), random weights, exported
at each size, quantised by ``ghostnetv2_mm.deployment.quantize_int8`` in each placement
of ``ghostnetv2_mm.benchmarks.int8.ROUTE_VARIANTS``, and timed side by side (one
interleaved loop per size); then, at ``--pt2e-sizes``, our backbone through PT2E
(torchao's X86InductorQuantizer) under ``torch.compile`` against compiled and eager
float32. Accuracy of the placements: tools/analysis/int8_study.py.

``--breakdown FILE ...`` profiles files instead (onnxruntime's profiler): kernel time of
the depthwise convs, of the dense convs and of every other op type.
"""
import sys

from ghostnetv2_mm.benchmarks.int8 import conv_kind_breakdown, run_int8_routes
from ghostnetv2_mm.utils.cli import (ToolParser, existing_file, parse_report_args,
                                     positive_int, print_report, tool_main)


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=positive_int, nargs='+', default=[224, 640])
    parser.add_argument('--pt2e-sizes', type=positive_int, nargs='*', default=[224],
                        help='sizes at which PT2E is timed too (each compile takes '
                        'minutes; none: leave it out)')
    parser.add_argument('--no-onnx', action='store_true',
                        help='leave out the onnxruntime files (PT2E only)')
    parser.add_argument('--rounds', type=positive_int, default=20)
    parser.add_argument('--threads', type=positive_int, default=1)
    parser.add_argument('--calib-images', type=positive_int, default=16)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--breakdown', type=existing_file, nargs='+',
                        help='instead: profile these ONNX files at the first --sizes '
                        '(kernel ms per run: depthwise convs, dense convs, other ops)')
    args = parse_report_args(parser, argv, suffixes=('.md', '.txt'),
                             inputs=lambda a: [('--breakdown', p) for p in a.breakdown or []])
    if args.breakdown:
        # the timing run's options would be ignored without a word: refuse them
        ignored = [name for name in ('pt2e_sizes', 'no_onnx', 'calib_images', 'seed')
                   if getattr(args, name) != parser.get_default(name)]
        if ignored:
            parser.error(f'argument --{ignored[0].replace("_", "-")}: not allowed with '
                         '--breakdown (it profiles the given files only)')
        return args
    unknown = sorted(set(args.pt2e_sizes) - set(args.sizes))
    if unknown:
        parser.error(f'argument --pt2e-sizes: {unknown} not among --sizes {args.sizes}')
    if args.no_onnx and not args.pt2e_sizes:
        parser.error('argument --no-onnx: nothing would be timed (no --pt2e-sizes)')
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    if args.breakdown:
        lines = [f'kernel ms per run at {args.sizes[0]}x{args.sizes[0]} (onnxruntime '
                 f'profiler, {args.rounds} runs, {args.threads} thread(s)):']
        for path in args.breakdown:
            b = conv_kind_breakdown(path, size=args.sizes[0], runs=args.rounds,
                                    threads=args.threads)
            lines.append(f"{path}: total {b.pop('total'):.2f} | "
                         + ', '.join(f'{k} {v:.2f}' for k, v in list(b.items())[:9]))
        print_report('\n'.join(lines), args.out)
        return 0
    text = run_int8_routes(sizes=args.sizes, rounds=args.rounds, threads=args.threads,
                           calib_images=args.calib_images, pt2e_sizes=args.pt2e_sizes,
                           onnx=not args.no_onnx, seed=args.seed)
    print_report(text, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
