#!/usr/bin/env python
"""Export a whole model (detector, segmentor, classifier) or a GhostNetV2 backbone to
ONNX, then check the file with onnxruntime against PyTorch at two input sizes.

    # a config's whole model, with its trained weights (mmdeploy's conventions)
    python tools/deployment/export_onnx.py --config configs/retinanet_ghostnetv2_coco.py \\
        --checkpoint work_dirs/retinanet/epoch_12.pth --out work_dirs/retinanet.onnx

    # the backbone (one output per --out-indices entry) or the ImageNet classifier
    python tools/deployment/export_onnx.py --arch 1.0x --out work_dirs/backbone.onnx
    python tools/deployment/export_onnx.py --classifier --checkpoint ck_ghostnetv2_10.pth.tar \\
        --out work_dirs/ghostnetv2_cls.onnx

The graph is the deploy (BatchNorm-folded) model with dynamic batch, height and width
(``--static-shape H W``: for that one input size only); input ``input`` is the
normalised, padded batch. Detectors output ``dets`` (N, K, 5)
and ``labels`` (N, K) with the config's test-time NMS inside the graph (Mask R-CNN
adds ``masks`` (N, K, 28, 28), each box's mask-head map of its class); segmentors
``output`` (N, 1, H, W) class indices; see ``ghostnetv2_mm/deployment/wrappers.py``.
The check compares onnxruntime with the PyTorch model's ``predict`` on random inputs
of each ``--check-sizes`` size and exits non-zero on a mismatch. Without
``--checkpoint`` the weights are random (for trying the export only).

Safety: every argument and file is checked before any work (an ``--out`` that is one
of the inputs, a folder or lies under a file is refused). The file is written
beside ``--out`` and renamed to it only when complete and only when the check
passed; a failed check or an error leaves an existing ``--out`` untouched
(``--keep-failed`` keeps the rejected file as ``NAME.failed.onnx``). Replacing an
existing ``--out`` is said. The file records what it was made from in its ONNX
metadata (config, normalisation, input conventions, class names), which
``onnx_infer.py`` checks against its config.
"""
import os
import sys

from ghostnetv2_mm.deployment.export import (DEFAULT_OPSET, OPSETS, add_model_arguments,
                                             check_model_arguments, export_inputs)
from ghostnetv2_mm.deployment.graph_rewrites import DEFAULT_MULTIPLE
from ghostnetv2_mm.utils.cli import (ToolParser, check_output, check_outputs, image_side,
                                     image_size, int_in, kept_outputs, positive_int,
                                     tool_main)


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    add_model_arguments(parser, 'ONNX', 'export this config\'s whole model')
    parser.add_argument('--out', required=True, help='the .onnx file to write')
    parser.add_argument('--keep-failed', action='store_true',
                        help='when the check fails, keep the file as NAME.failed.onnx '
                        '(an existing --out is never replaced by a failed file)')
    parser.add_argument('--export-size', type=image_size, default=(320, 320),
                        help='example input used for tracing, H or HxW (default 320)')
    parser.add_argument('--check-sizes', type=image_size, nargs='+', default=None,
                        help='input sizes checked with onnxruntime (default: 320 256x416)')
    parser.add_argument('--check-images', nargs='+', metavar='PATH',
                        help='check on these images (files or folders; with --config), '
                        'prepared by the config\'s test pipeline, instead of random '
                        'inputs of --check-sizes: a trained detector finds nothing in noise')
    parser.add_argument('--check-batch', type=positive_int, default=1)
    parser.add_argument('--static-shape', type=image_side, nargs=2, metavar=('H', 'W'),
                        help='export for this one input size (and batch --check-batch) '
                        'instead of dynamic batch/height/width; checked at that size')
    parser.add_argument('--no-pad-channels', action='store_true',
                        help='keep the ghost concatenations as traced (default: those '
                        'that feed only convs get zero channels up to a multiple of 16, '
                        'an exact rewrite that onnxruntime runs faster; ncnn runs the '
                        'unpadded graph faster, see docs/benchmarks.md)')
    parser.add_argument('--opset', type=int_in(*OPSETS), default=None,
                        help=f'ONNX opset, {OPSETS[0]} to {OPSETS[1]} (default: '
                        f'{DEFAULT_OPSET})')
    args = parser.parse_args(argv)
    check_model_arguments(parser, args)
    if args.static_shape:
        if args.check_images:
            parser.error('--static-shape cannot be checked on --check-images (their '
                         'prepared sizes vary); check it at its own size')
        shape = tuple(args.static_shape)
        if args.check_sizes and any(tuple(s) != shape for s in args.check_sizes):
            parser.error(f'--check-sizes {args.check_sizes}: a --static-shape '
                         f'{shape} file runs at {shape} only')
        args.export_size, args.check_sizes = shape, [shape]
    elif args.check_sizes is None:
        args.check_sizes = [(320, 320), (256, 416)]
    inputs = export_inputs(parser, args)
    check_output(args.out, '--out', suffixes=('.onnx',), inputs=inputs)
    check_outputs(kept_outputs('--out', args.out, args.keep_failed), inputs)
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    from ghostnetv2_mm.deployment import compare, export_onnx, onnx_session, wrap_for_export
    from ghostnetv2_mm.deployment.export import (build_for_export, export_metadata,
                                                 export_source, task_of)
    from ghostnetv2_mm.deployment.verify import print_check
    from ghostnetv2_mm.utils.fileio import atomic_output
    cfg = None
    if args.config:
        from ghostnetv2_mm.utils.toolkit import load_config
        cfg = load_config(args.config, args.cfg_options)
    model = build_for_export(cfg, args.checkpoint, args.classifier, args.arch,
                             args.out_indices)
    wrapper = wrap_for_export(model).eval()
    inputs = None
    if args.check_images:
        # read (and so check) every image before the export
        from ghostnetv2_mm.deployment.runtime import ImagePreparer
        prepare = ImagePreparer(cfg)
        inputs = [prepare(path)[0] for path in args.check_images]
    opset = args.opset or DEFAULT_OPSET
    what = export_source(args.config, args.classifier, args.arch)
    metadata = export_metadata(cfg, what, task_of(wrapper))
    static = args.static_shape is not None
    shape = (f'static input {args.check_batch}x3x{args.export_size[0]}x'
             f'{args.export_size[1]}' if static else 'dynamic batch/height/width')
    with atomic_output(args.out, keep_failed=args.keep_failed) as out:
        export_onnx(wrapper, out.path, args.export_size, opset=opset, metadata=metadata,
                    batch=args.check_batch if static else 1, dynamic=not static,
                    pad_channels=None if args.no_pad_channels else DEFAULT_MULTIPLE)
        print(f'exported {what} (deploy mode, BatchNorm folded): opset {opset}, '
              f'{shape}, outputs {", ".join(wrapper.output_names)}, '
              f'{os.path.getsize(out.path) / 2 ** 20:.1f} MB')
        if inputs is not None:
            print(f'onnxruntime vs PyTorch ({len(inputs)} images, as the test pipeline '
                  'prepares them):')
        else:
            print(f'onnxruntime vs PyTorch (batch {args.check_batch}, random inputs):')
        rows = compare(model, wrapper, onnx_session(out.path), args.check_sizes,
                       batch=args.check_batch, inputs=inputs)
        ok, verdict = print_check(rows)
        if not ok:
            out.fail(verdict)
    print(verdict)
    print(out.outcome())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
