"""Read a config, find and set up the OpenMMLab toolkit that it belongs to."""
import importlib
import os
import os.path as osp

from mmengine.config import Config

# default_scope -> the package whose register_all_modules sets it up.
TOOLKITS = {
    'mmdet': 'mmdet.utils',
    'mmseg': 'mmseg.utils',
    'mmpretrain': 'mmpretrain.utils',
}


def runner_settings() -> frozenset:
    """The top-level config keys mmengine's ``Runner`` reads although a config may
    leave them out (``randomness``, ``resume``, ``load_from``, ...): the parameters
    of ``Runner.__init__``."""
    import inspect

    from mmengine.runner import Runner
    return frozenset(inspect.signature(Runner.__init__).parameters) - {'self'}


def merge_cfg_options(cfg: Config, cfg_options, option: str = '--cfg-options') -> Config:
    """Merge ``--cfg-options`` into ``cfg`` (in place), refusing a key whose first
    part is neither in the config nor a setting the runner reads.

    mmengine's ``merge_from_dict`` adds any key it is given, so a misspelt one
    (``modle.backbone.arch=1.3x``) changes nothing that is used and the run goes on
    with the config's own value. Deeper parts may be new (``model.backbone.frozen_stages``
    where the config keeps the default), so only the first part is checked.

    Args:
        cfg (Config): The config to change.
        cfg_options (dict, optional): ``KEY.PATH: value`` as mmengine's
            ``DictAction`` parses them.
        option (str): How the user gave them, for the message.

    Returns:
        Config: ``cfg``. Raises :class:`UserError` (status 2) naming the key.
    """
    import difflib

    from .cli import ARGUMENT_STATUS, UserError
    if not cfg_options:
        return cfg
    known = set(cfg.keys()) | runner_settings()
    for key in cfg_options:
        first = str(key).split('.')[0]
        if first not in known:
            close = difflib.get_close_matches(first, sorted(known), n=1)
            hint = f'; did you mean {close[0]!r}?' if close else ''
            raise UserError(f'{option} {key}=...: {first!r} is not in the config '
                            f'{cfg.filename or ""!s}'.rstrip() + f' (the setting would be '
                            f'ignored){hint}; allowed first parts: '
                            f'{", ".join(sorted(cfg.keys()))}', ARGUMENT_STATUS)
    cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(path: str, cfg_options=None) -> Config:
    """``path`` read by mmengine, with ``--cfg-options`` overrides merged in (see
    :func:`merge_cfg_options`)."""
    return merge_cfg_options(Config.fromfile(path), cfg_options)


def runner_config(args) -> Config:
    """The config of a train/test run, as OpenMMLab's tools make it: ``args.config``
    with ``args.cfg_options``, ``args.launcher``, and the work dir from
    ``args.work_dir``, the config's own, or ``work_dirs/<config name>``. Sets
    ``LOCAL_RANK`` from ``--local-rank`` when the launcher did not."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg


def toolkit_of(cfg: Config) -> str:
    """The toolkit (default_scope) of ``cfg``, checked against the supported ones."""
    scope = cfg.get('default_scope')
    if scope not in TOOLKITS:
        raise ValueError(f'config default_scope={scope!r} is not supported; allowed: '
                         f'{sorted(TOOLKITS)} (set default_scope in the config, or inherit '
                         'a base config of mmdet/mmseg/mmpretrain that sets it)')
    return scope


def setup_toolkit(cfg: Config) -> str:
    """Import the config's toolkit, register its modules and make it the default
    scope; import ``custom_imports``. Returns the scope name."""
    scope = toolkit_of(cfg)
    try:
        utils = importlib.import_module(TOOLKITS[scope])
    except ImportError as exc:
        extra = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}[scope]
        raise ImportError(f'this config needs {scope}, which is not installed ({exc}); '
                          f"install it, e.g. pip install 'ghostnetv2-mm[{extra}]'") from exc
    utils.register_all_modules(init_default_scope=True)
    for name in (cfg.get('custom_imports') or {}).get('imports', []):
        importlib.import_module(name)
    return scope


def build_model_from_config(cfg: Config):
    """Build ``cfg.model`` in its toolkit's registry."""
    setup_toolkit(cfg)
    registry = importlib.import_module(f'{toolkit_of(cfg)}.registry').MODELS
    return registry.build(cfg.model)


def dataset_meta(cfg: Config) -> dict:
    """Class names (and palette) of the config's test dataset, for drawings and
    printed results: the dataset's ``metainfo`` in the config, completed by its dataset
    class's ``METAINFO`` (COCO's 80 classes, ADE20K's 150, ...) from the toolkit's own
    registry."""
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset and 'metainfo' not in dataset:  # RepeatDataset & co.
        dataset = dataset['dataset']
    meta = dict(dataset.get('metainfo') or {})
    registry = importlib.import_module(f'{setup_toolkit(cfg)}.registry').DATASETS
    dataset_cls = registry.get(dataset['type'])
    defaults = dict(getattr(dataset_cls, 'METAINFO', None) or {})
    if 'classes' in meta and len(meta['classes']) != len(defaults.get('classes', ())):
        defaults.pop('palette', None)  # the default palette belongs to other classes
    defaults.update(meta)
    return defaults
