"""The train / test sequence of tools/train.py and tools/test.py (and the Runner the
downstream benchmark builds): the config made ready for mmengine's Runner, the
checks before anything runs or is written (:mod:`ghostnetv2_mm.preflight`), the
toolkit set up, the Runner built, the weights loaded strictly, the run.

The tools parse their arguments and print; every step between is here, in this
order, so that a problem is reported before the Runner writes its first file.
"""
import os.path as osp
import pickle
from typing import Optional

from mmengine.config import Config

from .errors import UserError
from .utils.cli import ARGUMENT_STATUS


def build_runner(cfg: Config):
    """mmengine's Runner for ``cfg`` (its ``runner_type`` when it names one)."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)


def unwrapped_model(runner):
    """The runner's model without its distributed wrapper."""
    from mmengine.model import is_model_wrapper
    return runner.model.module if is_model_wrapper(runner.model) else runner.model


def _raise(problem: Optional[str], status: int = 1) -> None:
    if problem:
        raise UserError(problem, status)


# ---------------------------------------------------------------------- training
def train_config(cfg: Config, amp: bool = False, auto_scale_lr: bool = False,
                 resume: Optional[str] = None) -> Config:
    """``cfg`` (a :func:`~ghostnetv2_mm.utils.toolkit.runner_config`) with
    tools/train.py's switches applied.

    Args:
        cfg (Config): The run's config; changed in place.
        amp (bool): Mixed precision (mmengine's AmpOptimWrapper; needs CUDA).
        auto_scale_lr (bool): Scale the learning rate with the total batch size
            (the config's ``auto_scale_lr`` entry).
        resume (str, optional): ``'auto'`` (the latest checkpoint of the work dir)
            or a checkpoint path or URL.
    """
    if amp:
        import torch
        if not torch.cuda.is_available():
            raise UserError('--amp needs a CUDA GPU (mmengine\'s AmpOptimWrapper); '
                            'none is available here')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise UserError('--auto-scale-lr: the config has no auto_scale_lr entry')
        cfg.auto_scale_lr.enable = True
    if resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    return cfg


def run_training(cfg: Config, resume: Optional[str] = None) -> None:
    """Check, set up and run the training of ``cfg`` (see :func:`train_config`).

    Before anything runs: the config dump may not replace a file that is not an
    earlier dump; a ``resume`` file must exist; the neck's channels, the train and
    val datasets, the pretrained weights (unless resuming) and the launcher are
    checked. A ``resume`` file is read as data first and must fit the model.
    Problems are raised as :class:`UserError`.
    """
    from .preflight import (check_config_dump, check_datasets, check_feature_channels,
                            check_pretrained, setup_launcher, use_atomic_checkpoint_writes)
    _raise(check_config_dump(cfg), ARGUMENT_STATUS)  # before anything runs or is written
    from .utils.toolkit import setup_toolkit
    setup_toolkit(cfg)
    from .checkpoint import (ATOMIC_BACKEND, CheckpointError, load_model_weights,
                             register_whole_model_hook)
    from .checkpoint.safe_io import refusal_error
    use_atomic_checkpoint_writes(cfg, ATOMIC_BACKEND)
    own_file = resume not in (None, 'auto')
    if own_file and '://' not in resume:
        if osp.isdir(resume):
            raise UserError(f'--resume: {resume!r} is a folder, expected a checkpoint '
                            'file (--resume without a file resumes from the work dir)')
        if not osp.isfile(resume):
            raise UserError(f'--resume: checkpoint {resume!r} not found')
    problem = check_feature_channels(cfg) or check_datasets(cfg, splits=('train', 'val'))
    if problem is None and not cfg.get('resume'):
        problem = check_pretrained(cfg)
    _raise(problem or setup_launcher(cfg))

    runner = build_runner(cfg)
    # load_from hands the checkpoint to the whole model: let it take official/timm
    # GhostNet files too (their keys are at the root, not under backbone.).
    model = unwrapped_model(runner)
    register_whole_model_hook(model)
    if own_file:
        # mmengine would resume from a truncated file with a traceback, and from
        # another model's file with a warning and then a crash in the optimizer: read
        # it first (as data only) and check that it fits this model
        try:
            load_model_weights(model, resume, logger='silent', check_only=True)
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


# ----------------------------------------------------------------------- testing
def _enable_visualisation(cfg: Config, show_dir: str, scope: str) -> None:
    hooks = cfg.default_hooks
    if scope == 'mmdet' and 'visualization' in hooks:
        hooks.visualization.update(draw=True, test_out_dir=show_dir)
    elif scope == 'mmseg' and 'visualization' in hooks:
        hooks.visualization.update(draw=True)
        cfg.visualizer.save_dir = show_dir
    else:
        raise UserError(f'--show-dir is not supported for {scope} configs')


def run_test(cfg: Config, checkpoint: str, show_dir: Optional[str] = None):
    """Evaluate ``checkpoint`` with ``cfg`` (a
    :func:`~ghostnetv2_mm.utils.toolkit.runner_config`): returns (the metrics, the
    runner's rank).

    The weights are loaded strictly by this project's loader (mmengine's
    ``load_from`` would skip missing and unexpected keys with a warning), without
    the ImageNet weights first. Before anything runs: the config dump and the
    ``show_dir`` drawings may not replace other files; the test dataset and the
    launcher are checked. Problems are raised as :class:`UserError`.
    """
    cfg.load_from = None
    # The checkpoint provides every weight: skip loading ImageNet weights first.
    if cfg.get('model', {}).get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None

    from .preflight import check_config_dump, check_datasets, check_show_dir, setup_launcher
    from .utils.toolkit import setup_toolkit, toolkit_of
    # every file the runner and the drawings will write, before anything runs
    _raise(check_config_dump(cfg) or (
        check_show_dir(cfg, show_dir, toolkit_of(cfg)) if show_dir else None),
        ARGUMENT_STATUS)
    scope = setup_toolkit(cfg)
    from .checkpoint import load_model_weights
    _raise(check_datasets(cfg, splits=('test',)) or setup_launcher(cfg))
    if show_dir:
        _enable_visualisation(cfg, show_dir, scope)
    # Testing needs no training set-up. Without this, hooks that read runner.iter
    # (mmseg's visualisation hook does) make mmengine build the training loop and
    # its dataset, which fails where only the validation data is on disk.
    cfg.train_dataloader = cfg.train_cfg = cfg.optim_wrapper = cfg.param_scheduler = None

    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    load_model_weights(unwrapped_model(runner), checkpoint)  # (errors: one line)
    return runner.test(), runner.rank


def format_metrics(metrics) -> str:
    """The one line tools/test.py prints for a test run's metrics."""
    if not metrics:
        return ('metrics: none (the evaluator returned nothing; e.g. a detector that '
                'predicted no boxes above test_cfg.score_thr)')
    return 'metrics: ' + ', '.join(
        f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}' for k, v in metrics.items())
