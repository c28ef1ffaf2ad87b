#!/usr/bin/env python
"""INT8 against float32 with onnxruntime: accuracy on a model trained here, and speed.

    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/int8_study.py --threads 1 \\
        --out docs/int8_study.md

1. Accuracy: GhostNetV2-1.0x trained on the scikit-learn digits with a protocol and
   the code of tools/transfer_benchmark.py (``ghostnetv2_mm.benchmarks.transfer``;
   ``--protocol finetune``: random init, ``--epochs`` epochs at 32x32; ``linear``:
   the backbone as initialised and a logistic-regression head fitted on its pooled
   features, folded into the model),
   switched to deploy mode and exported (a 32x32 input: the last maps are 1 pixel),
   then quantised with ``ghostnetv2_mm.deployment.quantize_int8`` calibrated on the
   first ``--calib-images`` training images; every variant is scored on the whole
   test split (450 images) with onnxruntime.
2. Speed: the same variants at 32x32, and the ImageNet classifier (1.0x, 1000
   classes) and the backbone (to the 960-channel conv) at 224x224, float32 against
   INT8 (calibrated on digits images resized to 224: ranges only matter for accuracy),
   batch 1, ``--threads`` threads, ``--repeats`` interleaved rounds, median.

Variants: ``int8``: every conv and linear layer (weights per channel); ``int8 per-tensor``:
one weight scale per tensor; ``int8, depthwise float``: the depthwise convs (group > 1)
kept in float32.

``--detector-config CFG --onnx FLOAT.onnx INT8.onnx ...`` scores exported detectors
instead (the files of tools/deployment/export_onnx.py and quantize_onnx.py): box AP and
AP50 of each file on the config's test set, with the config's own evaluator (mmdet's
CocoMetric, as tools/test.py) and the onnxruntime predictor of onnx_infer.py; the
change is against the first file (give the float32 file first):

    python tools/analysis/int8_study.py --detector-config \\
        configs/demo/retinanet_ghostnetv2_toyshapes.py \\
        --onnx work_dirs/retinanet.onnx work_dirs/retinanet-int8.onnx
"""
import sys

from ghostnetv2_mm.benchmarks.int8 import detector_int8_table, run_int8_study
from ghostnetv2_mm.utils.cli import (ToolParser, existing_file, parse_report_args, positive_int,
                                     print_report, tool_main)


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--protocol', choices=('finetune', 'linear'), default='finetune',
                        help='how the digits model is trained (transfer_benchmark.py\'s '
                        'protocols; linear: backbone as initialised, fitted linear head)')
    parser.add_argument('--epochs', type=positive_int, default=10, help='fine-tuning epochs')
    parser.add_argument('--calib-images', type=positive_int, default=300)
    parser.add_argument('--repeats', type=positive_int, default=30)
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='threads of the timed runs (fine-tuning uses all cores)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--detector-config', type=existing_file,
                        help='instead: score the exported detectors of --onnx on this '
                        'config\'s test set (box AP, AP50)')
    parser.add_argument('--onnx', type=existing_file, nargs='+',
                        help='with --detector-config: .onnx files exported from it '
                        '(float32 first; the changes are against it)')
    # --out is checked against the inputs before the run, not after it
    args = parse_report_args(parser, argv, inputs=lambda a: (
        [('--detector-config', a.detector_config)] + [('--onnx', p) for p in a.onnx or []]))
    if bool(args.detector_config) != bool(args.onnx):
        parser.error('argument --onnx: required with --detector-config, and only with it')
    if args.detector_config:
        # the digits study's options would be ignored without a word: refuse them
        ignored = [name for name in ('protocol', 'epochs', 'calib_images', 'repeats', 'seed')
                   if getattr(args, name) != parser.get_default(name)]
        if ignored:
            parser.error(f'argument --{ignored[0].replace("_", "-")}: not allowed with '
                         '--detector-config (it scores the given files only)')
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    if args.detector_config:
        text = detector_int8_table(args.detector_config, args.onnx, threads=args.threads)
    else:
        text = run_int8_study(protocol=args.protocol, epochs=args.epochs,
                              calib_images=args.calib_images, repeats=args.repeats,
                              threads=args.threads, seed=args.seed)
    print_report(text, args.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
