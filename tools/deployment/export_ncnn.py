#!/usr/bin/env python
"""Export a model to ncnn (PREFIX.param + PREFIX.bin, for one fixed input size), then
check the files with ncnn against PyTorch.

    # a config's model: DeepLabV3(+), RetinaNet, YOLOv3, SSDLite
    python tools/deployment/export_ncnn.py --config configs/retinanet_ghostnetv2_coco.py \\
        --checkpoint work_dirs/retinanet/epoch_12.pth --input-size 800 1344 \\
        --out work_dirs/retinanet --check-images demo/

    # the backbone (one output per --out-indices entry) or the ImageNet classifier
    python tools/deployment/export_ncnn.py --arch 1.0x --input-size 224 224 \\
        --out work_dirs/backbone
    python tools/deployment/export_ncnn.py --classifier --checkpoint ck_ghostnetv2_10.pth.tar \\
        --input-size 224 224 --out work_dirs/ghostnetv2_cls

THE INPUT SIZE IS FIXED IN THE FILE: ncnn sizes its resize layers at conversion, so
the file runs at --input-size only (export once per size). The graph is the project's
ONNX export form (the deploy model, BatchNorm folded, its exact rewrites) at that one
shape, converted by pnnx; input blob ``in0`` is the normalised, padded image, outputs
``out0``, ``out1``, ... Backbones give their features, classifiers their logits,
segmentors the logits resized to the input (the per-pixel argmax runs outside: ncnn's
PyPI builds lack ArgMax), single-stage detectors their head's raw outputs (decoding
and NMS run in Python, see ghostnetv2_mm/deployment/ncnn.py). Two-stage detectors
(Mask R-CNN) are refused: ncnn cannot run their RoI selection. PREFIX.json records what
the files were made from (config, normalisation, input size, classes, outputs, blob
names); tools/deployment/ncnn_infer.py checks it against its config.

The check runs the files with ncnn's Python binding (fp32) against PyTorch's
``predict`` (detectors: the final detections; segmentors: the class map) or forward
(backbones, classifiers), on random inputs at the input size or on --check-images
prepared by the config's test pipeline and padded to the input size. Without
--checkpoint the weights are random (for trying the export only).

Safety: every argument and output is checked before any work (PREFIX.param, .bin and
.json must not be inputs, folders, or lie under a file). The three files are written
beside PREFIX and put in place only when complete and only when the check passed; a
failed check or an error leaves existing files untouched (--keep-failed keeps the
rejected ones as PREFIX.failed.param / .bin / .json). Needs the PyPI packages pnnx
and ncnn.
"""
import os
import sys

from ghostnetv2_mm.deployment.export import (add_model_arguments, check_model_arguments,
                                             export_inputs)
from ghostnetv2_mm.utils.cli import (ToolParser, check_outputs, kept_outputs, positive_int,
                                     tool_main)

OUTPUT_SUFFIXES = ('.param', '.bin', '.json')


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    add_model_arguments(parser, 'ncnn', 'export this config\'s model')
    parser.add_argument('--input-size', type=positive_int, nargs=2, required=True,
                        metavar=('H', 'W'),
                        help='THE input size, fixed in the file: the ncnn file runs at '
                        'this size only (images prepared smaller are padded to it)')
    parser.add_argument('--out', required=True, metavar='PREFIX',
                        help='writes PREFIX.param, PREFIX.bin and PREFIX.json')
    parser.add_argument('--check-images', nargs='+', metavar='PATH',
                        help='check on these images (files or folders; with --config), '
                        'prepared by the config\'s test pipeline and padded to the input '
                        'size, instead of random inputs: a trained detector finds nothing '
                        'in noise')
    parser.add_argument('--keep-failed', action='store_true',
                        help='when the check fails, keep the files as PREFIX.failed.param '
                        '/ .bin / .json (existing PREFIX files are never replaced by '
                        'failed ones)')
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='ncnn threads for the check (default 1)')
    args = parser.parse_args(argv)
    check_model_arguments(parser, args)
    if args.out.lower().endswith(OUTPUT_SUFFIXES):
        parser.error(f'--out {args.out!r}: give the PREFIX without an extension (the '
                     'tool writes PREFIX.param, PREFIX.bin and PREFIX.json)')
    inputs = export_inputs(parser, args)
    args.files = {ext: f'{args.out}.{ext}' for ext in ('param', 'bin', 'json')}
    # the three files, and with --keep-failed their PREFIX.failed.* names too
    check_outputs([output for path in args.files.values()
                   for output in kept_outputs('--out', path, args.keep_failed)], inputs)
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    from ghostnetv2_mm.deployment import ncnn as nc
    nc.require('pnnx')
    nc.require('ncnn')
    import json
    import torch

    from ghostnetv2_mm.deployment.export import (build_for_export, export_metadata,
                                                 export_source, task_of)
    from ghostnetv2_mm.deployment.verify import compare, print_check
    from ghostnetv2_mm.utils.fileio import atomic_output
    cfg = None
    if args.config:
        from ghostnetv2_mm.utils.toolkit import load_config
        cfg = load_config(args.config, args.cfg_options)
        nc.check_config(cfg)  # before the model is built
    size = tuple(args.input_size)
    model = build_for_export(cfg, args.checkpoint, args.classifier, args.arch,
                             args.out_indices)
    wrapper = nc.ncnn_form(model)
    inputs = None
    if args.check_images:
        # read (and so check) every image before the export
        from ghostnetv2_mm.deployment.runtime import ImagePreparer
        prepare = ImagePreparer(cfg)
        inputs = [nc.pad_to_input(prepare(path)[0], size, f'--check-images {path!r}')
                  for path in args.check_images]
    what = export_source(args.config, args.classifier, args.arch)
    task = task_of(wrapper)
    with torch.no_grad():
        reference = wrapper(torch.zeros(1, 3, *size))
    reference = reference if isinstance(reference, (list, tuple)) else [reference]
    shapes = [list(t.shape) for t in reference]
    groups = getattr(wrapper, 'groups', None)
    keep = args.keep_failed
    with atomic_output(args.files['param'], keep) as param, \
            atomic_output(args.files['bin'], keep) as weights, \
            atomic_output(args.files['json'], keep) as side:
        outs = (param, weights, side)
        nc.export_ncnn(wrapper, param.path, weights.path, size)
        content = nc.sidecar(export_metadata(cfg, what, task), size, wrapper.output_names,
                             shapes, param.path, weights.path, groups)
        with open(side.path, 'w') as f:
            json.dump(content, f, indent=1, sort_keys=True)
        mb = (os.path.getsize(param.path) + os.path.getsize(weights.path)) / 2 ** 20
        print(f'exported {what} (deploy mode, BatchNorm folded) to ncnn via the ONNX '
              f'export form and pnnx: fixed input {nc.INPUT_BLOB} 1x3x{size[0]}x{size[1]}, '
              'outputs ' + ', '.join(f"{o['blob']} {o['name']}" for o in content['outputs'])
              + f', {mb:.1f} MB')
        runner = nc.NcnnRunner(param.path, weights.path, content['input_blob']['shape'],
                               content['outputs'], threads=args.threads)
        post, threshold = None, 0.3  # (the threshold serves single-channel segmentors)
        if task == 'detection':
            post = nc.DetectionPostProcess(model.bbox_head, groups)
            print(f'detections: the head outputs decoded in Python ({post.route})')
        elif task == 'segmentation' and getattr(model.decode_head, 'threshold',
                                               None) is not None:
            threshold = model.decode_head.threshold
        run = nc.NcnnModel(runner, task, post, threshold)
        if inputs is not None:
            print(f'ncnn vs PyTorch ({len(inputs)} images, as the test pipeline prepares '
                  f'them, padded to {size[0]}x{size[1]}):')
        else:
            print('ncnn vs PyTorch (random inputs):')
        rows = compare(model, wrapper, run, [size, size], batch=1, inputs=inputs)
        ok, verdict = print_check(rows)
        if not ok:
            for out in outs:
                out.fail(verdict)
    print(verdict)
    for out in outs:
        print(out.outcome())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
