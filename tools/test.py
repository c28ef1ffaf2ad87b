#!/usr/bin/env python
"""Evaluate a checkpoint with any ghostnetv2-mm (or mmdet/mmseg/mmpretrain) config.

    python tools/test.py configs/retinanet_ghostnetv2_coco.py work_dirs/x/epoch_12.pth
    python tools/test.py CONFIG CKPT --work-dir DIR --show-dir vis --cfg-options ...

The weights are loaded strictly (a file that does not fit the model is refused). The
checks before the run and the run itself: ``ghostnetv2_mm/runner.py``.
"""
import sys

from ghostnetv2_mm.utils.cli import (ToolParser, add_runner_arguments, existing_file,
                                     file_or_url, tool_main)


def parse_args(argv=None):
    parser = ToolParser(description='Test (and evaluate) a model')
    parser.add_argument('config', type=existing_file, help='config file')
    parser.add_argument('checkpoint', type=file_or_url,
                        help='checkpoint: a path or an http(s) URL; this '
                        'project\'s checkpoints, or official/timm GhostNetV2 files for '
                        'classifier configs')
    parser.add_argument('--show-dir', help='save images with predictions drawn here '
                        '(relative to the work dir\'s timestamped folder)')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    from ghostnetv2_mm.runner import format_metrics, run_test
    from ghostnetv2_mm.utils.toolkit import runner_config
    metrics, rank = run_test(runner_config(args), args.checkpoint, show_dir=args.show_dir)
    if rank == 0:
        print(format_metrics(metrics), flush=True)


if __name__ == '__main__':
    sys.exit(main())
