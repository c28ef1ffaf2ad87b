"""The downstream benchmark's run: every (config, backbone, seed) not yet in
``OUT/results.csv`` trained and tested through mmengine's Runner, as
tools/train.py and tools/test.py do, and appended one row at a time."""
import contextlib
import copy
import io
import json
import logging
import math
import os
import os.path as osp
import sys
import tempfile
import time
from functools import partial
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from ...checkpoint import (CheckpointError, load_model_weights, read_checkpoint,
                           unwrap_state_dict)
from ...errors import UserError
from ...utils.fileio import atomic_write_text
from ..report import read_rows
from ..timing import interleaved
from .catalogue import Backbone, Build, get_backbone
from .config import (build_backbone, datasets_of, iters_per_epoch_of,
                     main_metrics, schedule_length, set_data_root, shorten_schedule,
                     swap_backbone, test_size)
from .results import CSV_FIELDS, PLOT, append_row, check_resumable, row_key, write_reports

INITS = ('imagenet', 'random')
LATENCY_THREADS = 1


class BenchmarkError(UserError):
    """The benchmark cannot run as asked (the message says why and what to do)."""


def _progress(**kwargs):
    from ..transfer.protocols import progress
    return progress(**kwargs)


def _is_main_process() -> bool:
    # before the first Runner starts the process group, the launcher's rank tells
    return int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))) == 0


def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def output_files(out: str, configs: Sequence[str], backbones: Sequence[str],
                 seeds: Sequence[int]) -> List[tuple]:
    """(option, path) of every file the benchmark writes by name into ``out``: the
    reports, each config's cost cache and each run's config dump (mmengine writes it
    into the run's work dir), for :func:`ghostnetv2_mm.utils.cli.check_outputs`."""
    files = [osp.join(out, name) for name in ('results.csv', 'results.md', PLOT)]
    for path in configs:
        name = config_name(path)
        files.append(osp.join(out, name, 'cost.json'))
        files += [osp.join(out, name, b, str(s), osp.basename(path))
                  for b in backbones for s in seeds]
    return [('--out', f) for f in files]


# ------------------------------------------------------------------------ the config
def ensure_data(cfg: Config, splits: Sequence[str]) -> None:
    """Generate ToyShapes where a dataset of ``cfg`` expects it and it is missing
    (the demo configs' data); then any dataset still missing is an error."""
    from ghostnetv2_mm.datasets.toy_shapes import make_toy_shapes
    from ghostnetv2_mm.preflight import check_datasets
    for dataset in datasets_of(cfg, splits):
        root = dataset.get('data_root') or ''
        if 'toy_shapes' in root and not osp.exists(root):
            print(f'generating the ToyShapes dataset in {root} (nothing is downloaded)',
                  flush=True)
            make_toy_shapes(root)
    problem = check_datasets(cfg, splits=splits)
    if problem:
        raise BenchmarkError(problem)


def prepare_config(path: str, *, cfg_options: Optional[dict], data_root: Optional[str],
                   iters: Optional[int]):
    """(config, toolkit scope) of ``path`` with the benchmark's changes: the options,
    the data root (data generated if it is ToyShapes), the shortened schedule."""
    from ghostnetv2_mm.utils.toolkit import merge_cfg_options, setup_toolkit
    if not osp.isfile(path):
        raise BenchmarkError(f'config file {path!r} not found')
    cfg = merge_cfg_options(Config.fromfile(path), cfg_options)
    scope = setup_toolkit(cfg)
    if scope not in ('mmdet', 'mmseg'):
        raise BenchmarkError(f'{path}: default_scope={scope!r}; the downstream benchmark '
                             'takes detection (mmdet) and segmentation (mmseg) configs')
    if data_root:
        set_data_root(cfg, data_root)
    ensure_data(cfg, ('train', 'val', 'test'))
    if iters:
        shorten_schedule(cfg, iters, lambda: iters_per_epoch_of(cfg, scope))
    return cfg, scope


# ------------------------------------------------------------------------- weights
def _read_weights(entry: Backbone):
    try:
        return read_checkpoint(entry.weights)
    except (CheckpointError, FileNotFoundError) as exc:
        raise BenchmarkError(
            f'--init imagenet: the ImageNet weights of {entry.name} ({entry.source}) '
            f'cannot be read. {exc}\nTo train every backbone from scratch instead, use '
            '--init random.') from None


def load_imagenet(backbone: torch.nn.Module, entry: Backbone, build: Build) -> None:
    """Load ``entry``'s ImageNet weights into ``backbone``, all or nothing: every
    weight of the backbone must be in the file, and every backbone weight of the file
    must fit, except the keys ``build.drop`` names (layers this build does not have).
    The backbone is then marked initialised (the Runner's init leaves it alone)."""
    state = unwrap_state_dict(_read_weights(entry))
    if entry.prefix:
        state = {k[len(entry.prefix):]: v for k, v in state.items()
                 if k.startswith(entry.prefix)}
        if not state:
            raise BenchmarkError(f'{entry.weights}: no key starts with {entry.prefix!r}')
    state = {k: v for k, v in state.items() if not k.startswith(build.drop)}
    try:
        load_model_weights(backbone, state)
    except CheckpointError as exc:
        raise BenchmarkError(f'{entry.name}: {entry.weights} does not fit '
                             f'{build.type}: {exc}') from None
    backbone._is_init = True


# ---------------------------------------------------------------------------- cost
def measure_costs(backbones: Dict[str, torch.nn.Module], size, rounds: int,
                  workdir: str) -> Dict[str, dict]:
    """Parameters (of the layers that run), MACs and latency (batch 1, one thread,
    median of ``rounds`` interleaved rounds: PyTorch eager and onnxruntime of the
    exported deploy graph, where it exports) of every backbone at ``size``."""
    from ghostnetv2_mm.deployment import BackboneExport, prepare_for_export
    from ghostnetv2_mm.utils import count_macs, count_used_parameters

    from ..speed import onnx_backends, torch_backend
    x = torch.zeros(1, 3, *size)
    costs, runs = {}, {}
    for name, model in backbones.items():
        model.eval()
        costs[name] = dict(params=count_used_parameters(model, x),
                           macs=count_macs(model, x)[0], latency_onnx_ms='')
        eager = torch_backend(model, channels_last=False, device=torch.device('cpu'),
                              amp=False, amp_dtype=None)
        runs[(name, 'torch')] = partial(eager.run, x)
        try:
            deployed = prepare_for_export(copy.deepcopy(model))
            onnx = onnx_backends(BackboneExport(deployed), ['onnx'], workdir=workdir,
                                 threads=LATENCY_THREADS, tag=name, size=tuple(size))
            runs[(name, 'onnx')] = partial(onnx['onnx'].run, x)
        except Exception as exc:  # noqa: BLE001 - a missing figure, said so
            print(f'{name}: no onnxruntime latency, the export failed '
                  f'({type(exc).__name__}: {exc})', flush=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        times = interleaved(runs, rounds=rounds, warmup=3)
    finally:
        torch.set_num_threads(threads)
    for (name, kind), t in times.items():
        t = sorted(t)
        costs[name][f'latency_{kind}_ms'] = round(1000 * t[len(t) // 2], 3)
    return costs


def cached_costs(path: str, wanted: Dict[str, dict], measure) -> Dict[str, dict]:
    """The costs in ``path`` for the backbones of ``wanted`` (name -> what the entry
    must match), measuring (``measure(names)``) and saving the others."""
    cache = {}
    if osp.isfile(path):
        with open(path) as f:
            cache = json.load(f)
    missing = [n for n, key in wanted.items()
               if any(cache.get(n, {}).get(k) != v for k, v in key.items())]
    if missing:
        for name, cost in measure(missing).items():
            cache[name] = dict(cost, **wanted[name])
        atomic_write_text(json.dumps(cache, indent=1), path)
    return {n: cache[n] for n in wanted}


# -------------------------------------------------------------------- one training
class ProgressHook(Hook):
    """A progress bar over the training iterations of one run."""
    priority = 'VERY_LOW'

    def __init__(self, desc: str):
        self.desc, self.bar = desc, None

    def before_train(self, runner) -> None:
        self.bar = _progress(total=runner.max_iters, initial=runner.iter, desc=self.desc,
                             leave=False)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self.bar is not None:
            loss = (outputs or {}).get('loss')
            if loss is not None:
                self.bar.set_postfix(loss=f'{float(loss.detach()):.3f}', refresh=False)
            self.bar.update()

    def after_train(self, runner) -> None:
        if self.bar is not None:
            self.bar.close()


class FiniteLossHook(Hook):
    """Stop a run at the first non-finite training loss.

    mmengine trains on through a NaN or infinite loss, and the test then reports a
    metric of a diverged model (often a plausible-looking 0.0) that the benchmark
    would record as a result: the run fails instead, and no row is written for it.
    """
    priority = 'VERY_HIGH'

    def __init__(self, tag: str):
        self.tag = tag

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        loss = (outputs or {}).get('loss')
        # (a value only: float() of a tensor that requires grad warns in torch >= 2.9)
        loss = loss.detach() if hasattr(loss, 'detach') else loss
        if loss is not None and not math.isfinite(float(loss)):
            raise BenchmarkError(f'{self.tag}: the training loss is {float(loss)} at '
                                 f'iteration {runner.iter + 1}; the run failed and nothing '
                                 'was written for it (lower the learning rate, or check '
                                 'the data)')


def train_and_test(cfg: Config, *, work_dir: str, seed: int, launcher: str, tag: str,
                   load_weights=None) -> dict:
    """Train ``cfg`` and test the final weights, with the Runner set up as
    tools/train.py does (:mod:`ghostnetv2_mm.runner`); returns the test metrics.
    ``load_weights(backbone)`` puts ImageNet weights into the built backbone before
    training."""
    from ghostnetv2_mm.checkpoint import ATOMIC_BACKEND
    from ghostnetv2_mm.preflight import (check_feature_channels, setup_launcher,
                                         use_atomic_checkpoint_writes)
    from ghostnetv2_mm.runner import build_runner, unwrapped_model
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    cfg.launcher = launcher
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    # one logger and one visualizer per run: mmengine hands back an existing instance
    # of the same name, which would write into the previous run's folder
    cfg.experiment_name = f'{tag}_{time.strftime("%Y%m%d_%H%M%S")}'
    if cfg.get('visualizer'):
        cfg.visualizer.name = f'visualizer_{cfg.experiment_name}'
    use_atomic_checkpoint_writes(cfg, ATOMIC_BACKEND)
    problem = check_feature_channels(cfg) or setup_launcher(cfg)
    if problem:
        raise BenchmarkError(problem)
    # The console shows warnings and the progress bars; the run's log file keeps
    # everything (the Runner prints its environment and config while it is built).
    with contextlib.redirect_stdout(io.StringIO()):
        runner = build_runner(cfg)
    for handler in runner.logger.handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setStream(sys.stdout)
            handler.setLevel(logging.WARNING)
    model = unwrapped_model(runner)
    if load_weights is not None:
        load_weights(model.backbone)
    runner.register_hook(ProgressHook(tag))
    runner.register_hook(FiniteLossHook(tag))
    runner.train()
    return runner.test()


def read_metrics(metrics: dict, names: Sequence[str], where: str) -> List[float]:
    """The values of ``names`` in ``metrics``; a COCO metric the evaluator left out
    because nothing was detected above the config's score threshold is 0."""
    values = []
    for name in names:
        if name in metrics:
            value = float(metrics[name])
        elif name.startswith('coco/'):
            print(f'{where}: no detection above the score threshold, {name} = 0',
                  flush=True)
            value = 0.0
        else:
            raise BenchmarkError(f'{where}: the evaluator returned {sorted(metrics)}, '
                                 f'not {name}')
        if not math.isfinite(value):
            raise BenchmarkError(f'{where}: {name} = {value}; nothing was written for '
                                 'this run')
        values.append(value)
    return values


# ---------------------------------------------------------------------- the benchmark
def run_downstream_benchmark(*, configs: Sequence[str], backbones: Sequence[str],
                             out: str, data_root: Optional[str] = None,
                             iters: Optional[int] = None, init: str = 'imagenet',
                             seeds: Sequence[int] = (0,),
                             cfg_options: Optional[dict] = None,
                             launcher: str = 'none',
                             latency_rounds: int = 20) -> List[dict]:
    """Train and test every config with every backbone and seed not yet in
    ``OUT/results.csv``; returns all its rows. ``OUT/results.md`` and the plot are
    rewritten after each row.

    Args:
        configs (Sequence[str]): detection / segmentation configs with a
            GhostNet-family backbone (its taps and output stride are kept).
        backbones (Sequence[str]): catalogue names (``catalogue.BACKBONES``).
        out (str): the output folder; rows already there are kept (resume).
        data_root (str, optional): replaces every dataset's data_root.
        iters (int, optional): train this many iterations instead of the config's
            schedule (warm-up keeps its proportion).
        init (str): 'imagenet' (every backbone's ImageNet weights, by URL) or
            'random' (every backbone from scratch, one initialisation rule).
        seeds (Sequence[int]): one run per seed.
        cfg_options (dict, optional): config overrides, applied first.
        launcher (str): mmengine's launcher ('none', 'pytorch', 'slurm', 'mpi').
        latency_rounds (int): interleaved timing rounds of the latency.
    """
    if init not in INITS:
        raise BenchmarkError(f'--init {init!r}; allowed: {", ".join(INITS)}')
    # catalogue names (a bare family name, e.g. 'ghostnetv2', is its 1.0x entry)
    entries = {entry.name: entry for entry in map(get_backbone, backbones)}
    backbones = list(entries)
    names = [config_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise BenchmarkError(f'configs {list(configs)}: two share a file name, and the '
                             'results are kept by file name')
    # the folder is made by the first file written into it, so that an early error
    # (a foreign results.csv, a config that cannot be prepared) leaves nothing behind
    csv_path = osp.join(out, 'results.csv')
    rows = read_rows(csv_path, CSV_FIELDS)
    done = {row_key(r) for r in rows}
    options = ' '.join(f'{k}={v}' for k, v in sorted((cfg_options or {}).items()))

    # every config prepared and every backbone swapped in before anything trains
    plans = []
    for path, name in zip(configs, names):
        try:
            cfg, scope = prepare_config(path, cfg_options=cfg_options, data_root=data_root,
                                        iters=iters)
            settings = dict(iterations=str(iters) if iters else schedule_length(cfg),
                            data_root=data_root or '', cfg_options=options, init=init)
            check_resumable(rows, name, settings, csv_path)
            swapped = {b: swap_backbone(cfg, b, scope) for b in backbones}
            plans.append(dict(name=name, cfg=cfg, scope=scope, settings=settings,
                              swapped=swapped, metrics=main_metrics(cfg),
                              size=test_size(cfg)))
        except ValueError as exc:  # ConfigError, resume refusals
            raise BenchmarkError(f'{path}: {exc}') from None
    todo = [(p['name'], b, s) for p in plans for b in backbones for s in seeds
            if (p['name'], b, init, str(s)) not in done]
    total = len(plans) * len(backbones) * len(seeds)
    print(f'{total} (config, backbone, seed) runs, {total - len(todo)} already in '
          f'{csv_path}, {len(todo)} to do', flush=True)
    if init == 'imagenet':
        for name in sorted({b for _, b, _ in todo}):
            _read_weights(entries[name])  # every file at hand before anything trains
    main = _is_main_process()
    overall = _progress(total=len(todo), desc='downstream benchmark')
    for plan in plans:
        name, size = plan['name'], plan['size']
        mine = [b for b in backbones if any(t[0] == name and t[1] == b for t in todo)]
        if not mine:
            continue
        costs = {}
        if main:
            wanted = {b: dict(implementation=plan['swapped'][b][0].model.backbone.type,
                              test_size=f'{size[0]}x{size[1]}') for b in backbones}

            def measure(missing, plan=plan, size=size):
                overall.write(f'{plan["name"]}: backbone cost of {", ".join(missing)} at '
                              f'{size[0]}x{size[1]} ({latency_rounds} interleaved rounds)')
                modules = {b: build_backbone(plan['swapped'][b][0].model.backbone,
                                             plan['scope']) for b in missing}
                with tempfile.TemporaryDirectory(prefix='downstream-onnx-') as tmp:
                    return measure_costs(modules, size, latency_rounds, tmp)

            costs = cached_costs(osp.join(out, name, 'cost.json'), wanted, measure)
        for backbone in mine:
            cfg, build, channels = plan['swapped'][backbone]
            entry = entries[backbone]
            for seed in seeds:
                if (name, backbone, seed) not in todo:
                    continue
                tag = f'{name} / {backbone} / seed {seed}'
                overall.set_description(tag)
                start = time.time()
                loader = (partial(load_imagenet, entry=entry, build=build)
                          if init == 'imagenet' else None)
                metrics = train_and_test(
                    cfg, work_dir=osp.join(out, name, backbone, str(seed)), seed=seed,
                    launcher=launcher, tag=tag.replace(' / ', '_').replace(' ', ''),
                    load_weights=loader)
                values = read_metrics(metrics or {}, plan['metrics'], tag)
                if main:
                    cost = costs[backbone]
                    row = dict(config=name, backbone=backbone, seed=seed,
                               metric=plan['metrics'][0], value=f'{values[0]:.4f}',
                               params=cost['params'], macs=cost['macs'],
                               test_size=cost['test_size'],
                               latency_torch_ms=cost['latency_torch_ms'],
                               latency_onnx_ms=cost.get('latency_onnx_ms', ''),
                               latency_threads=LATENCY_THREADS,
                               implementation=cfg.model.backbone.type,
                               weights=entry.weights if init == 'imagenet' else '',
                               seconds=f'{time.time() - start:.1f}',
                               finished=time.strftime('%Y-%m-%d %H:%M:%S'),
                               **plan['settings'])
                    if len(values) > 1:
                        row.update(metric_2=plan['metrics'][1], value_2=f'{values[1]:.4f}')
                    append_row(csv_path, row)
                    write_reports(csv_path, out)
                    overall.write(f'{tag}: ' + ', '.join(
                        f'{m} {v:.4f}' for m, v in zip(plan['metrics'], values))
                        + f' ({time.time() - start:.0f} s)')
                overall.update()
    overall.close()
    from mmengine.dist import barrier
    barrier()  # (distributed) the other processes read the rows once all are written
    return write_reports(csv_path, out) if main else read_rows(csv_path)
