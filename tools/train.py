#!/usr/bin/env python
"""Train any ghostnetv2-mm config (or any mmdet/mmseg/mmpretrain config).

    python tools/train.py configs/retinanet_ghostnetv2_coco.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume [CKPT] --amp \\
        --cfg-options train_cfg.max_epochs=1

The toolkit is chosen from the config's ``default_scope``. Multi-GPU / multi-node:
``tools/dist_train.sh`` (torchrun) or ``tools/slurm_train.sh``. The checks before
the run and the run itself: ``ghostnetv2_mm/runner.py``.
"""
import sys

from ghostnetv2_mm.utils.cli import ToolParser, add_runner_arguments, existing_file, tool_main


def parse_args(argv=None):
    parser = ToolParser(description='Train a model')
    parser.add_argument('config', type=existing_file, help='config file')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the '
                        'work dir when no CKPT is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper; needs a CUDA GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    add_runner_arguments(parser)
    return parser.parse_args(argv)


@tool_main
def main(argv=None):
    args = parse_args(argv)
    from ghostnetv2_mm.runner import run_training, train_config
    from ghostnetv2_mm.utils.toolkit import runner_config
    cfg = train_config(runner_config(args), amp=args.amp, auto_scale_lr=args.auto_scale_lr,
                       resume=args.resume)
    run_training(cfg, resume=args.resume)


if __name__ == '__main__':
    sys.exit(main())
