"""Checks run before training/testing starts, so that a missing dataset or missing
pretrained weights give one clear message instead of a failure deep in a runner."""
import os
import re
from typing import List, Optional

from mmengine.config import Config

from .checkpoint.reading import TRAIN_FROM_SCRATCH_HINT
from .models import FAMILY
from .utils.cli import same_file
from .utils.fileio import special_file_kind

PRETRAINED_HINT = (
    'The named configs read the official ImageNet weights by URL (downloaded once into '
    'torch hub\'s cache); a local copy works as well: point the checkpoint at it. '
    + TRAIN_FROM_SCRATCH_HINT)

DATASET_HELP = {
    'CocoDataset': (
        'COCO 2017, laid out as\n'
        '  {root}/annotations/instances_train2017.json\n'
        '  {root}/annotations/instances_val2017.json\n'
        '  {root}/train2017/*.jpg\n'
        '  {root}/val2017/*.jpg\n'
        'Get it from https://cocodataset.org/#download (2017 Train/Val images and '
        'Train/Val annotations), or link an existing copy: ln -s /path/to/coco {root}'),
    'ADE20KDataset': (
        'ADE20K (SceneParsing, ADEChallengeData2016), laid out as\n'
        '  {root}/images/training/*.jpg      {root}/annotations/training/*.png\n'
        '  {root}/images/validation/*.jpg    {root}/annotations/validation/*.png\n'
        'Get ADEChallengeData2016.zip from http://sceneparsing.csail.mit.edu and unzip '
        'it under data/ade/, or link an existing copy: ln -s /path/to/ADEChallengeData2016 {root}'),
    'ImageNet': (
        'ImageNet-1k, laid out as\n'
        '  {root}/train/<class>/*.JPEG  {root}/val/<class>/*.JPEG (or meta/{{train,val}}.txt)\n'
        'Get it from https://image-net.org (registration needed).'),
}

# The generated demo dataset (ghostnetv2_mm/datasets/toy_shapes.py), used by configs/demo.
TOY_SHAPES_HELP = (
    'ToyShapes, the generated demo dataset (COCO instances json + ADE20K-style masks in\n'
    '  {root}/annotations/, images in {root}/images/{{training,validation}}/).\n'
    'Generate it (a few seconds, nothing is downloaded) with\n'
    '  python -m ghostnetv2_mm.datasets.toy_shapes {root}')


def unwrap_datasets(cfg_dataset) -> List[dict]:
    """Unwrap RepeatDataset/ConcatDataset/ClassBalancedDataset wrappers."""
    if cfg_dataset is None:
        return []
    if 'datasets' in cfg_dataset:
        return [d for sub in cfg_dataset['datasets'] for d in unwrap_datasets(sub)]
    if 'dataset' in cfg_dataset:
        return unwrap_datasets(cfg_dataset['dataset'])
    return [cfg_dataset]


def _missing_paths(dataset: dict) -> List[str]:
    root = dataset.get('data_root') or ''
    paths = [root] if root else []
    ann = dataset.get('ann_file')
    if ann:
        paths.append(os.path.join(root, ann))
    prefix = dataset.get('data_prefix') or {}
    # mmdet/mmseg use a dict of folders; mmpretrain also accepts one folder as a str.
    for value in (prefix.values() if isinstance(prefix, dict) else [prefix]):
        if isinstance(value, str) and value:
            paths.append(os.path.join(root, value))
    return [p for p in paths if not os.path.exists(p)]


def check_datasets(cfg: Config, splits=('train', 'val', 'test')) -> Optional[str]:
    """Return a message describing the first missing dataset, or None."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader:
            continue
        for dataset in unwrap_datasets(loader.get('dataset')):
            missing = _missing_paths(dataset)
            if missing:
                kind = dataset.get('type', 'the dataset')
                kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
                help_text = DATASET_HELP.get(kind, 'See the config for the expected layout.')
                if 'toy_shapes' in (dataset.get('data_root') or ''):
                    help_text = TOY_SHAPES_HELP
                return (f'The {split} dataset of this config ({kind}) is not on disk: '
                        f'{missing[0]!r} does not exist.\nExpected: '
                        + help_text.format(root=dataset.get('data_root', 'data/...').rstrip('/'))
                        + '\nTo try a config without downloading anything, point it at the '
                        'generated ToyShapes dataset (python -m ghostnetv2_mm.datasets.toy_shapes '
                        'ROOT).')
    return None


def check_pretrained(cfg: Config) -> Optional[str]:
    """Return a message if the backbone's Pretrained checkpoint file is missing."""
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    init_cfg = backbone.get('init_cfg')
    checkpoint = None
    if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
        checkpoint = init_cfg.get('checkpoint')
    elif isinstance(backbone.get('pretrained'), str):
        checkpoint = backbone['pretrained']
    if checkpoint and '://' not in checkpoint and not os.path.isfile(checkpoint):
        return (f'The backbone\'s pretrained weights {checkpoint!r} are not on disk.\n'
                + PRETRAINED_HINT + '\nOverride the path with --cfg-options '
                'model.backbone.init_cfg.checkpoint=PATH.')
    return None


def setup_launcher(cfg: Config) -> Optional[str]:
    """Make ``cfg.launcher`` work without CUDA, or return why it cannot.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its default DDP
    wrapper pins ``device_ids=[LOCAL_RANK]``; both fail on a machine without CUDA.
    For the ``pytorch`` launcher (torchrun, ``tools/dist_*.sh``) on such a machine,
    start the process group here with the gloo backend and wrap the model in DDP
    without ``device_ids``, so that multi-process CPU runs work. Slurm and MPI runs
    without CUDA are refused. With CUDA (or ``launcher='none'``) nothing changes.
    """
    import torch
    launcher = cfg.get('launcher', 'none') or 'none'
    if launcher == 'none' or torch.cuda.is_available():
        return None
    if launcher != 'pytorch':
        return (f'--launcher {launcher} needs CUDA GPUs, and none is available here. '
                'On CPUs, start several processes with torchrun and --launcher pytorch '
                '(gloo backend), or use --launcher none.')
    import datetime
    import torch.distributed as dist
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        if os.environ.get('RANK', '0') == '0':
            print(f'note: no CUDA here, so the distributed backend is gloo instead of '
                  f'{dist_cfg.get("backend", "nccl")!r}', flush=True)
        dist_cfg['backend'] = 'gloo'
    env_cfg['dist_cfg'] = dist_cfg
    if not dist.is_initialized():
        kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        if kwargs.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=kwargs['timeout'])
        dist.init_process_group(backend='gloo', **kwargs)
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper.setdefault('device_ids', None)  # CPU modules: DDP wants None
    cfg.model_wrapper_cfg = wrapper
    return None


# Necks that list their inputs deepest first (mmdet's YOLOV3Neck).
DEEPEST_FIRST_NECKS = ('YOLOV3Neck',)


def check_feature_channels(cfg: Config) -> Optional[str]:
    """Return a message if the neck's or the heads' ``in_channels`` do not match the
    channels the GhostNet-family backbone of ``cfg`` outputs (caught before training,
    instead of a shape error deep in the first forward pass)."""
    model = cfg.get('model') or {}
    backbone_cfg = model.get('backbone') or {}
    backbone_type = backbone_cfg.get('type')
    if backbone_type not in FAMILY:
        return None
    shape_args = {k: backbone_cfg[k] for k in ('arch', 'widen_factor', 'out_indices',
                                               'in_channels') if k in backbone_cfg}
    channels = list(FAMILY[backbone_type](**shape_args).out_channels)
    described = (f"the backbone ({backbone_type} arch={shape_args.get('arch', '1.0x')!r}, "
                 f"out_indices={tuple(shape_args.get('out_indices', (3, 5, 7, 9)))}) "
                 f'outputs {channels} channels')
    neck = model.get('neck')
    for n, neck_cfg in enumerate(neck if isinstance(neck, (list, tuple)) else [neck]):
        if not isinstance(neck_cfg, dict) or 'in_channels' not in neck_cfg:
            continue
        name = 'model.neck' + (f'[{n}]' if isinstance(neck, (list, tuple)) else '')
        expected = neck_cfg['in_channels']
        wanted, order = channels, ''
        if neck_cfg.get('type') in DEEPEST_FIRST_NECKS:
            wanted, order = channels[::-1], f' ({neck_cfg["type"]} lists them deepest first)'
        if isinstance(expected, (list, tuple)) and list(expected) != wanted:
            return (f'{name}.in_channels={list(expected)} but {described}; set it to '
                    f'{wanted}{order}')
        if isinstance(expected, int) and expected != channels[-1]:
            return (f'{name}.in_channels={expected} but {described}; the neck reads the last '
                    f'one: set it to {channels[-1]}')
        return None  # a neck sits between backbone and heads: the heads see its outputs
    for head_name in ('decode_head', 'auxiliary_head'):
        heads = model.get(head_name)
        for h, head in enumerate(heads if isinstance(heads, (list, tuple)) else [heads]):
            if not isinstance(head, dict) or 'in_channels' not in head:
                continue
            index = head.get('in_index', -1)
            try:
                wanted = ([channels[i] for i in index] if isinstance(index, (list, tuple))
                          else channels[index])
            except IndexError:
                return (f'model.{head_name}.in_index={index} but {described} '
                        f'({len(channels)} outputs)')
            got = head['in_channels']
            got = list(got) if isinstance(got, (list, tuple)) else got
            if got != wanted:
                return (f'model.{head_name}.in_channels={got} but {described}; with '
                        f'in_index={index} set it to {wanted}')
            # DeepLabV3+ (DepthwiseSeparableASPPHead) also reads the FIRST output, the
            # low-level features, whatever its in_index
            if 'c1_in_channels' in head and head['c1_in_channels'] != channels[0]:
                return (f'model.{head_name}.c1_in_channels={head["c1_in_channels"]} but '
                        f'{described}; the decoder reads the first one: set it to '
                        f'{channels[0]}')
    return None


def use_atomic_checkpoint_writes(cfg: Config, backend: str) -> None:
    """Let the CheckpointHook write through the project's atomic local backend (a
    crash while saving leaves the previous file intact), unless the config chose
    where and how checkpoints are stored."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    if not hook or hook.get('type') not in ('CheckpointHook', None):
        return
    out_dir = hook.get('out_dir') or ''
    if '://' in str(out_dir) or hook.get('backend_args') or hook.get('file_client_args'):
        return
    hook['backend_args'] = dict(backend=backend)


# ------------------------------------------------------------- files the runner writes
# mmengine's Runner names each run's folder in the work dir by its start time; its
# log lines start with the time, and one message is 'Config:' and the dumped text.
_RUN_FOLDER = re.compile(r'^\d{8}_\d{6}$')
_LOG_LINE = re.compile(r'^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} - ', re.M)
_CONFIG_MESSAGE = ' - INFO - Config:\n'


def config_dump_path(cfg: Config) -> Optional[str]:
    """Where mmengine's Runner writes the config when it starts:
    ``<work_dir>/<the config's file name>`` (None when the config has no file: the
    runner then names the dump after the run's new timestamp)."""
    filename = getattr(cfg, 'filename', None)
    if not filename or not cfg.get('work_dir'):
        return None
    return os.path.join(cfg.work_dir, os.path.basename(filename))


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding='utf-8', errors='replace') as f:
            return f.read()
    except OSError:
        return None


def _earlier_records(work_dir: str) -> List[str]:
    """The config texts earlier runs recorded in ``work_dir``: the ``Config:``
    messages of every run's log (``<timestamp>/<timestamp>.log``) and its
    ``<timestamp>/vis_data/config.py`` (LocalVisBackend's copy of the dump)."""
    texts = []
    try:
        runs = sorted(d for d in os.listdir(work_dir) if _RUN_FOLDER.match(d))
    except OSError:
        return texts
    for run in runs:
        log = _read(os.path.join(work_dir, run, f'{run}.log')) or ''
        start = log.find(_CONFIG_MESSAGE)
        while start >= 0:
            start += len(_CONFIG_MESSAGE)
            end = _LOG_LINE.search(log, start)
            texts.append(log[start:end.start() if end else len(log)])
            start = log.find(_CONFIG_MESSAGE, start)
        copy = _read(os.path.join(work_dir, run, 'vis_data', 'config.py'))
        if copy is not None:
            texts.append(copy)
    return texts


def check_config_dump(cfg: Config) -> Optional[str]:
    """Whether mmengine's config dump may go where the Runner writes it.

    The Runner writes the merged config to ``<work_dir>/<config file name>`` (plainly,
    not atomically) before anything runs. The file there may be replaced only when it
    is this tool's own earlier dump: a regular file whose whole text is a config that
    an earlier run in this work dir recorded (each run's log holds it as its
    ``Config:`` message, and ``<timestamp>/vis_data/config.py`` is a copy; trailing
    newlines aside). Anything else there (the
    config itself when the work dir is the config's folder, another file of the
    same name, a device, a FIFO, a folder) is refused before the run.

    Returns:
        str or None: The problem, one line, or None when the dump may be written.
    """
    path = config_dump_path(cfg)
    if path is None or not os.path.lexists(path):
        return None
    where = (f'--work-dir {cfg.work_dir!r}: mmengine\'s runner writes the config to '
             f'{path!r}')
    kind = special_file_kind(path)
    if kind or os.path.isdir(path):
        return f'{where}, which is {kind or "a folder"}; give another --work-dir'
    text = _read(path)
    if text is None:
        return f'{where}, which cannot be read; give another --work-dir'
    text = text.rstrip('\n')
    if text and any(text == r.rstrip('\n') for r in _earlier_records(cfg.work_dir)):
        return None  # an earlier run's dump: replacing it loses nothing
    what = ('the config itself' if same_file(path, cfg.filename) else
            'a file that is no earlier run\'s dump of the config')
    return (f'{where}, replacing {what} (it would be lost); give another --work-dir '
            '(e.g. work_dirs/<name>) or move that file')


def check_show_dir(cfg: Config, show_dir: str, scope: str) -> Optional[str]:
    """Whether tools/test.py's ``--show-dir`` drawings may go where the toolkit's
    hook writes them.

    mmdet's DetVisualizationHook writes each drawing as ``<dir>/<image file name>``,
    with ``<dir>`` = ``show_dir`` when it is absolute, else
    ``<work_dir>/<new timestamp>/show_dir`` (a new folder). An absolute ``show_dir``
    that is the folder of the test images would replace every image by its drawing:
    refused. mmseg's visualizer writes under ``show_dir/vis_data/`` (``vis_image/
    test_<name>_<step>.png`` and a copy of the config, ``config.py``), which must not
    be the config or a device. A ``show_dir`` that is a file is refused.

    Returns:
        str or None: The problem, one line, or None.
    """
    def problem(what):
        return f'--show-dir {show_dir!r}: {what}; nothing was run'

    if os.path.exists(show_dir) and not os.path.isdir(show_dir):
        return problem(f'is {special_file_kind(show_dir) or "a file"}, expected a folder')
    if scope == 'mmdet' and os.path.isabs(show_dir):
        for dataset in unwrap_datasets((cfg.get('test_dataloader') or {}).get('dataset')):
            prefix = dataset.get('data_prefix') or {}
            img = prefix.get('img') if isinstance(prefix, dict) else prefix
            if img is None:
                continue
            images = os.path.join(dataset.get('data_root') or '', img)
            if os.path.isdir(images) and same_file(show_dir, images):
                return problem(f'is the folder of the test images ({images!r}): each '
                               'drawing is named as its image and would replace it; give '
                               'another folder')
    if scope == 'mmseg':
        dump = os.path.join(show_dir, 'vis_data', 'config.py')
        kind = special_file_kind(dump)
        if kind or os.path.isdir(dump):
            return problem(f'the visualizer writes the config to {dump!r}, which is '
                           f'{kind or "a folder"}')
        config = getattr(cfg, 'filename', None)
        if config and same_file(dump, config):
            return problem(f'the visualizer writes the config to {dump!r}, which is the '
                           'config itself')
    return None
