#!/usr/bin/env python
"""GPU figures for docs/benchmarks.md (needs CUDA; prints Markdown tables).

    python tools/analysis/gpu_benchmark.py --out work_dirs/gpu_benchmark.md

1. Training throughput (images/s; forward + backward + SGD step; AMP float16; batch
   ``--train-batch``, default 16) of RetinaNet-GhostNetV2-1.0x (configs/
   retinanet_ghostnetv2_coco.py) against mmdet's RetinaNet-R18
   (mmdet::retinanet/retinanet_r18_fpn_1x_coco.py), on synthetic 800x1216 images with
   3 random boxes each, random weights, ``--iters`` timed iterations after 5 warm-ups.
2. Backbone inference throughput (AMP float16, channels-last, batch 64 and 256, 224x224)
   of this project's GhostNetV2-1.0x (eager and deploy) against timm's ghostnetv2_100.
"""
import os

from ghostnetv2_mm.benchmarks.gpu import run_gpu_benchmark
from ghostnetv2_mm.utils.cli import (ToolParser, image_side, parse_report_args, positive_int,
                                     print_report, tool_main)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DETECTORS = {
    'RetinaNet GhostNetV2-1.0x': os.path.join(ROOT, 'configs', 'retinanet_ghostnetv2_coco.py'),
    'RetinaNet R-18 (mmdet)': 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'}


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train-batch', type=positive_int, default=16)
    parser.add_argument('--iters', type=positive_int, default=20)
    parser.add_argument('--size', type=image_side, nargs=2, default=[800, 1216])
    return parse_report_args(parser, argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    text = run_gpu_benchmark(detectors=DETECTORS, train_batch=args.train_batch,
                             iters=args.iters, size=args.size)
    print_report(text, args.out)


if __name__ == '__main__':
    main()
