#!/usr/bin/env python
"""Static INT8 post-training quantisation of an exported ONNX file (onnxruntime, QDQ).

    python tools/deployment/quantize_onnx.py work_dirs/cls.onnx work_dirs/cls-int8.onnx \\
        --calib-dir data/imagenet/val --num-images 300 --size 224

Calibration images are resized to ``--size`` (bilinear, whole image) and normalised
with ``--mean``/``--std`` (default: ImageNet, RGB order) - use what the model was
trained with. ``--placement convs`` (default): convolutions and linear layers are
quantised (weights int8 per channel, activations uint8 per tensor, min/max ranges); the
DFC and SE gates, resizes, adds and pooling stay float32. ``--placement integer``:
every operator onnxruntime has a uint8 kernel for (Concat, Mul, Add, Sigmoid, pooling,
Resize, ...) is quantised too, so no float island sits between two convs;
``--float-prefix`` keeps nodes by name in float (e.g. ``/backbone/layer0/``, the stem)
(``ghostnetv2_mm.deployment.quantize``; docs/benchmarks.md has the timings). The tool prints which
node types run in INT8 and which stay float, and judges the INT8 file against the
float file (exit 1 when it fails):

* a whole detector (``export_onnx.py --config``; the file's metadata says
  ``detection``, outputs ``dets``, ``labels``[, ``masks``]), on every calibration
  image: by matching detections, not slot by slot (INT8 moves near-equal scores past
  each other). Each float32 detection scoring at least ``--min-score`` (at most 20
  per image) needs an INT8 twin anywhere in that image's output (same label, IoU >
  0.5, score within ``--tolerance``) and each such INT8 detection a float32 twin;
  the check passes when at least ``--min-matched`` of each side have one (and Mask
  R-CNN's twins' masks, at 0.5, differ in at most ``--tolerance`` of their pixels);
* every other file (backbones, classifiers, segmentors), on the first calibration
  batch: the largest difference of each float output must stay within
  ``--tolerance`` of its range; an integer output (a segmentor's class map) may
  differ in at most ``--tolerance`` of its elements.

``dst`` must not be ``src``. It is written beside itself and renamed only when
complete and within the tolerance; otherwise an existing ``dst`` is unchanged
(``--keep-failed`` keeps the rejected file as ``NAME.failed.onnx``).
"""
import sys

from ghostnetv2_mm.deployment.quantize import (FORMATS, INT8_MATCH_IOU, INT8_MIN_MATCHED,
                                               INT8_MIN_SCORE, INT8_TOLERANCE, INT8_TOP,
                                               PLACEMENTS, calibration_batches)
from ghostnetv2_mm.utils.cli import (ARGUMENT_STATUS, ToolParser, UserError, check_output,
                                     check_outputs,
                                     existing_dir, existing_file, finite_float, float_in,
                                     int_in,
                                     kept_outputs, non_negative_float, positive_float,
                                     positive_int, tool_main)

# The largest input side: calibration holds every image (and onnxruntime every
# intermediate output of each) in memory, and sides beyond this are no CNN input.
MAX_SIDE = 4096


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', type=existing_file, help='float32 .onnx file')
    parser.add_argument('dst', help='INT8 .onnx file to write')
    parser.add_argument('--calib-dir', required=True, type=existing_dir,
                        help='folder of calibration images (searched recursively)')
    parser.add_argument('--num-images', type=positive_int, default=300)
    parser.add_argument('--batch', type=positive_int, default=10)
    parser.add_argument('--size', type=int_in(1, MAX_SIDE), nargs='+', default=[224],
                        help=f'input size, H or H W (default 224; at most {MAX_SIDE}, '
                        'and the calibration images must fit in memory)')
    parser.add_argument('--mean', type=finite_float, nargs=3, default=[123.675, 116.28, 103.53])
    parser.add_argument('--std', type=positive_float, nargs=3, default=[58.395, 57.12, 57.375])
    parser.add_argument('--exclude-nodes', nargs='*', default=[],
                        help='node names to keep in float')
    parser.add_argument('--placement', choices=sorted(PLACEMENTS), default='convs',
                        help='which operator types run in INT8: convs (convs and linear '
                        'layers; default) or integer (every op with a uint8 kernel)')
    parser.add_argument('--float-prefix', nargs='*', default=[],
                        help='keep in float every node whose name starts with one of these')
    parser.add_argument('--format', choices=FORMATS, default='qdq',
                        help='QDQ pairs (default) or QLinear* operators')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per tensor (default: per output channel)')
    parser.add_argument('--weight-type', choices=('int8', 'uint8'), default='int8',
                        help='int8 (U8S8, default) or uint8 (U8U8) weights')
    parser.add_argument('--reduce-range', action='store_true', help='7-bit weights')
    parser.add_argument('--symmetric', action='store_true',
                        help='symmetric int8 activations and weights')
    parser.add_argument('--tolerance', type=non_negative_float, default=INT8_TOLERANCE,
                        help='largest allowed difference of an output, as a fraction of '
                        f'the float output\'s range (default {INT8_TOLERANCE}); '
                        'detectors: the largest score difference of two twins; '
                        'integer outputs: the share of elements that may differ')
    parser.add_argument('--min-matched', type=float_in(0, 1), default=INT8_MIN_MATCHED,
                        help='detectors: the share of the judged float32 detections that '
                        'need an INT8 twin, and of the INT8 ones a float32 twin '
                        f'(same label, IoU > {INT8_MATCH_IOU:g}, score within --tolerance; '
                        'judged: the detections scoring >= --min-score, at most '
                        f'{INT8_TOP} per image; default {INT8_MIN_MATCHED})')
    parser.add_argument('--min-score', type=float_in(0, 1, low_open=True),
                        default=INT8_MIN_SCORE,
                        help='detectors: the lowest score of a judged detection '
                        f'(default {INT8_MIN_SCORE}; lower ones are clutter that NMS '
                        'keeps or drops on small changes)')
    parser.add_argument('--keep-failed', action='store_true',
                        help='outside the tolerance, keep the file as NAME.failed.onnx')
    args = parser.parse_args(argv)
    if len(args.size) not in (1, 2):
        parser.error(f'--size takes H or H W, got {args.size}')
    check_output(args.dst, 'dst', inputs=[('src', args.src)], suffixes=('.onnx',))
    check_outputs(kept_outputs('dst', args.dst, args.keep_failed), [('src', args.src)])
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    from ghostnetv2_mm.deployment import (onnx_session, quantize_int8,
                                          quantized_node_counts, run_onnx)
    import numpy as np

    from ghostnetv2_mm.deployment.quantize import (describe_int8, file_task,
                                                   int8_differences, unknown_nodes)
    from ghostnetv2_mm.utils.fileio import atomic_output
    try:
        source = onnx_session(args.src)
    except Exception as exc:  # noqa: BLE001 - onnxruntime's errors: name the file
        raise UserError(f'src {args.src!r} is not a readable ONNX file: '
                        f'{" ".join(str(exc).split())[:300]}') from exc
    unknown = unknown_nodes(args.src, args.exclude_nodes)
    if unknown:  # onnxruntime would quantise them without a word
        raise UserError(f'argument --exclude-nodes: {", ".join(map(repr, unknown))} '
                        f'{"is" if len(unknown) == 1 else "are"} no node of {args.src} '
                        '(node names: e.g. python -c "import onnx; print([n.name for n in '
                        f'onnx.load({args.src!r}).graph.node])")', 2)
    batches = calibration_batches(args.calib_dir, args.num_images, args.batch, args.size,
                                  args.mean, args.std)
    with atomic_output(args.dst, keep_failed=args.keep_failed) as out:
        try:
            quantize_int8(args.src, out.path, batches, op_types=PLACEMENTS[args.placement],
                          exclude_nodes=args.exclude_nodes, per_channel=not args.per_tensor,
                          float_prefixes=args.float_prefix, quant_format=args.format,
                          weight_type=args.weight_type, reduce_range=args.reduce_range,
                          symmetric=args.symmetric)
        except ValueError as exc:
            if 'float_prefixes' not in str(exc):
                raise
            raise UserError(f'--float-prefix {args.float_prefix}: match no node name '
                            f'of {args.src}', ARGUMENT_STATUS) from exc
        counts = quantized_node_counts(out.path)
        print(f'quantised {args.src} (calibrated on {sum(len(b) for b in batches)} images)')
        for kind in ('int8', 'float'):
            print(f'  {kind:5}: ' + ', '.join(f'{k} {v}'
                                              for k, v in sorted(counts[kind].items())))
        names = [o.name for o in source.get_outputs()]
        task = file_task(args.src, names)
        quantized = onnx_session(out.path)
        # a detector: every calibration image (a batch holds too few detections to
        # judge a share); else the first batch
        judged = batches if task == 'detection' else batches[:1]
        reference, result = ([run_onnx(s, b) for b in judged] for s in (source, quantized))
        reference, result = ([np.concatenate(o) for o in zip(*r)]
                             for r in (reference, result))
        rows = int8_differences(names, reference, result, args.tolerance, task=task,
                                min_matched=args.min_matched, min_score=args.min_score)
        if task == 'detection':
            print(f'INT8 vs float32 on the {sum(len(b) for b in judged)} calibration '
                  'images, detections matched (tolerance: '
                  f'{args.tolerance:g} of a score):')
        else:
            print(f'INT8 vs float32 on the first calibration batch (tolerance: '
                  f'{args.tolerance:g} of the float output\'s range):')
        for r in rows:
            print(describe_int8(r))
        ok = all(r['ok'] for r in rows)
        if not ok:
            out.fail('outside the tolerance')
    print(('PASSED: ' if ok else 'FAILED: an output is outside the tolerance '
           f'(--tolerance {args.tolerance:g}'
           + (f', --min-matched {args.min_matched:g}' if task == 'detection' else '')
           + '); ') + out.outcome())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
