#!/usr/bin/env python
"""Train any ghostnetv2-mm config (or any mmdet/mmseg/mmpretrain config).

    python tools/train.py configs/retinanet_ghostnetv2_coco.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume [CKPT] --amp \\
        --cfg-options train_cfg.max_epochs=1

The toolkit is chosen from the config's ``default_scope``. Multi-GPU / multi-node:
``tools/dist_train.sh`` (torchrun) or ``tools/slurm_train.sh``.
"""
import argparse
import os
import os.path as osp
import pickle
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import Config, DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go '
                        '(default: work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint in the '
                        'work dir when no CKPT is given')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper; needs a CUDA GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate with the total batch size')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_cfg.max_iters=100')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_config(args) -> Config:
    if not osp.isfile(args.config):
        sys.exit(f'error: config file {args.config!r} not found')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            sys.exit('error: --amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper); '
                     'none is available here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            sys.exit('error: --auto-scale-lr: the config has no auto_scale_lr entry')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv=None):
    args = parse_args(argv)
    cfg = build_config(args)
    from ghostnetv2_mm.utils.preflight import (check_datasets, check_feature_channels,
                                               check_pretrained, setup_launcher,
                                               use_atomic_checkpoint_writes)
    from ghostnetv2_mm.utils.toolkit import setup_toolkit
    setup_toolkit(cfg)
    import ghostnetv2_mm  # noqa: F401  (lets --resume read mmengine checkpoints safely)
    from ghostnetv2_mm.checkpoint import ATOMIC_BACKEND, CheckpointError
    from ghostnetv2_mm.checkpoint.safe_io import refusal_error
    use_atomic_checkpoint_writes(cfg, ATOMIC_BACKEND)
    if args.resume not in (None, 'auto') and '://' not in args.resume \
            and not osp.isfile(args.resume):
        sys.exit(f'error: --resume: checkpoint {args.resume!r} not found')
    problem = check_feature_channels(cfg) or check_datasets(cfg, splits=('train', 'val'))
    if problem is None and not cfg.get('resume'):
        problem = check_pretrained(cfg)
    if problem is None:
        problem = setup_launcher(cfg)
    if problem:
        sys.exit(f'error: {problem}')

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg
              else RUNNERS.build(cfg))
    # load_from hands the checkpoint to the whole model: let it take official/timm
    # GhostNet files too (their keys are at the root, not under backbone.).
    from mmengine.model import is_model_wrapper
    from ghostnetv2_mm.checkpoint import register_whole_model_hook
    register_whole_model_hook(runner.model.module if is_model_wrapper(runner.model)
                              else runner.model)
    try:
        runner.train()
    except CheckpointError as exc:
        # A Pretrained init_cfg named a file that is not a loadable checkpoint
        # (corrupted, or carrying code): stop before training.
        sys.exit(f'error: {exc}')
    except pickle.UnpicklingError as exc:
        # mmengine read --resume / load_from with torch's weights_only loading, which
        # refused the file: nothing from it ran; say so plainly.
        sys.exit(f'error: {refusal_error(cfg.load_from or "the checkpoint", exc)}')


if __name__ == '__main__':
    main()
