#!/usr/bin/env python
"""Evaluate a checkpoint with any ghostnetv2-mm (or mmdet/mmseg/mmpretrain) config.

    python tools/test.py configs/retinanet_ghostnetv2_coco.py work_dirs/x/epoch_12.pth
    python tools/test.py CONFIG CKPT --work-dir DIR --show-dir vis --cfg-options ...
"""
import sys

from ghostnetv2_mm.utils.cli import (ARGUMENT_STATUS, ToolParser, UserError,
                                     add_runner_arguments, existing_file, file_or_url,
                                     tool_main)
from ghostnetv2_mm.utils.toolkit import runner_config


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


def enable_visualisation(cfg, show_dir, scope):
    hooks = cfg.default_hooks
    if scope == 'mmdet' and 'visualization' in hooks:
        hooks.visualization.update(draw=True, test_out_dir=show_dir)
    elif scope == 'mmseg' and 'visualization' in hooks:
        hooks.visualization.update(draw=True)
        cfg.visualizer.save_dir = show_dir
    else:
        raise UserError(f'--show-dir is not supported for {scope} configs')


@tool_main
def main(argv=None):
    args = parse_args(argv)
    cfg = runner_config(args)
    # The weights are loaded below, strictly, by this project's loader (mmengine's
    # load_from would skip missing and unexpected keys with a warning).
    cfg.load_from = None
    # The checkpoint provides every weight: skip loading ImageNet weights first.
    if cfg.get('model', {}).get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None

    from ghostnetv2_mm.preflight import (check_config_dump, check_datasets,
                                         check_show_dir, setup_launcher)
    from ghostnetv2_mm.utils.toolkit import setup_toolkit, toolkit_of
    # every file the runner and the drawings will write, before anything runs
    problem = check_config_dump(cfg) or (
        check_show_dir(cfg, args.show_dir, toolkit_of(cfg)) if args.show_dir else None)
    if problem:
        raise UserError(problem, ARGUMENT_STATUS)
    scope = setup_toolkit(cfg)
    from ghostnetv2_mm.checkpoint import load_model_weights
    problem = check_datasets(cfg, splits=('test',)) or setup_launcher(cfg)
    if problem:
        raise UserError(problem)
    if args.show_dir:
        enable_visualisation(cfg, args.show_dir, scope)
    # Testing needs no training set-up. Without this, hooks that read runner.iter
    # (mmseg's visualisation hook does) make mmengine build the training loop and
    # its dataset, which fails where only the validation data is on disk.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None

    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_model_weights(model, args.checkpoint)  # (errors: one line, see utils.cli)
    metrics = runner.test()
    if runner.rank == 0:
        print(format_metrics(metrics), flush=True)


def format_metrics(metrics) -> str:
    if not metrics:
        return ('metrics: none (the evaluator returned nothing; e.g. a detector that '
                'predicted no boxes above test_cfg.score_thr)')
    return 'metrics: ' + ', '.join(
        f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}' for k, v in metrics.items())


if __name__ == '__main__':
    sys.exit(main())
