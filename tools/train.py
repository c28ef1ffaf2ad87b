#!/usr/bin/env python
"""Train any ghostnetv2-mm config (or any mmdet/mmseg/mmpretrain config).

    python tools/train.py configs/retinanet_ghostnetv2_coco.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume [CKPT] --amp \\
        --cfg-options train_cfg.max_epochs=1

The toolkit is chosen from the config's ``default_scope``. Multi-GPU / multi-node:
``tools/dist_train.sh`` (torchrun) or ``tools/slurm_train.sh``.
"""
import os.path as osp
import pickle
import sys

from mmengine.config import Config

from ghostnetv2_mm.utils.cli import (ARGUMENT_STATUS, ToolParser, UserError,
                                     add_runner_arguments, existing_file, tool_main)
from ghostnetv2_mm.utils.toolkit import runner_config


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


def build_config(args) -> Config:
    cfg = runner_config(args)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper); '
                            'none is available here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise UserError('--auto-scale-lr: the config has no auto_scale_lr entry')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


@tool_main
def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    from ghostnetv2_mm.preflight import (check_config_dump, check_datasets,
                                         check_feature_channels, check_pretrained,
                                         setup_launcher, use_atomic_checkpoint_writes)
    problem = check_config_dump(cfg)  # before anything runs or is written
    if problem:
        raise UserError(problem, ARGUMENT_STATUS)
    from ghostnetv2_mm.utils.toolkit import setup_toolkit
    setup_toolkit(cfg)
    import ghostnetv2_mm  # noqa: F401  (lets --resume read mmengine checkpoints safely)
    from ghostnetv2_mm.checkpoint import ATOMIC_BACKEND, CheckpointError
    from ghostnetv2_mm.checkpoint.safe_io import refusal_error
    use_atomic_checkpoint_writes(cfg, ATOMIC_BACKEND)
    if args.resume not in (None, 'auto') and '://' not in args.resume:
        if osp.isdir(args.resume):
            raise UserError(f'--resume: {args.resume!r} is a folder, expected a checkpoint '
                            'file (--resume without a file resumes from the work dir)')
        if not osp.isfile(args.resume):
            raise UserError(f'--resume: checkpoint {args.resume!r} not found')
    problem = check_feature_channels(cfg) or check_datasets(cfg, splits=('train', 'val'))
    if problem is None and not cfg.get('resume'):
        problem = check_pretrained(cfg)
    if problem is None:
        problem = setup_launcher(cfg)
    if problem:
        raise UserError(problem)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg
              else RUNNERS.build(cfg))
    # load_from hands the checkpoint to the whole model: let it take official/timm
    # GhostNet files too (their keys are at the root, not under backbone.).
    from mmengine.model import is_model_wrapper
    from ghostnetv2_mm.checkpoint import register_whole_model_hook
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    register_whole_model_hook(model)
    if args.resume not in (None, 'auto'):
        # mmengine would resume from a truncated file with a traceback, and from
        # another model's file with a warning and then a crash in the optimizer: read
        # it first (as data only) and check that it fits this model
        from ghostnetv2_mm.checkpoint import load_model_weights
        try:
            load_model_weights(model, args.resume, logger='silent', check_only=True)
        except CheckpointError as exc:
            raise UserError(f'--resume: {exc}') from None
    try:
        runner.train()
    except pickle.UnpicklingError as exc:
        # mmengine read --resume / load_from with torch's weights_only loading, which
        # refused the file: nothing from it ran; say so plainly. (A Pretrained
        # init_cfg's file that cannot be loaded raises CheckpointError, reported by
        # the shared error path.)
        raise refusal_error(cfg.load_from or 'the checkpoint', exc) from None


if __name__ == '__main__':
    sys.exit(main())
