#!/usr/bin/env python
"""Latency, throughput and peak memory of GhostNetV2 (eager, deploy, onnxruntime) and
its peers, and of whole detectors/segmentors, with this CPU's compute bound.

    # backbones side by side, plus whole models at their test sizes, ONE interleaved run
    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/benchmark.py --threads 1 \\
        --models timm-ghostnetv2 ghostnetv2 ghostnetv2-deploy ghostnetv2-onnx \\
        --sizes 224 640 --configs configs/retinanet_ghostnetv2_coco.py@800x1216 \\
        configs/deeplabv3_ghostnetv2_ade20k.py@512 --out docs/benchmarks_cpu.md

    # a config's whole model on CUDA with AMP (PyTorch backends only)
    python tools/analysis/benchmark.py --models --configs \\
        configs/retinanet_ghostnetv2_coco.py@800x1333 --device cuda --amp

Method
------
* Every model runs ``--warmup`` forwards per input size first, then ``--repeats``
  ROUNDS; in each round every model runs once, one after the other. Background load
  therefore hits all models alike, and ``ratio`` (the median over rounds of
  model time / baseline time in the same round) stays meaningful on a busy machine.
  Latency is the median over rounds, with the p10-p90 spread.
* Backends: PyTorch eager (``ghostnetv2``, timm, mmpretrain peers), PyTorch deploy
  (BatchNorm folded, ``-deploy``), onnxruntime (``-onnx``: the deploy model exported
  by ``ghostnetv2_mm.deployment``, CPU execution provider, ``--threads`` intra-op
  threads; ``-onnx-int8``: the same file after static QDQ INT8 quantisation, weights
  per channel, calibrated here on 16 random inputs: for SPEED only, see
  docs/benchmarks.md for accuracy), OpenVINO (``-openvino``, if installed).
* Whole models (``--configs CONFIG@HxW``, random weights with the toolkit's own
  initialisation): the PyTorch model's ``predict`` (network + the toolkit's
  post-processing) eager and in deploy mode, against the exported graph (network,
  box decoding and NMS; or logits, resize and argmax) on onnxruntime / OpenVINO.
  ``timm`` = the same model whose GhostNetV2 trunk is timm's ``ghostnetv2_*`` blocks
  (only for undilated backbones: timm has no dilation), the baseline when present.
* Compute bound: conv + linear MACs x 2 / the peak float32 rate of this CPU, measured
  as the best of 5 (2048 x 2048) @ (2048 x 2048) matrix products (``torch.mm``,
  oneDNN/MKL) with the same threads. No backend can be faster than this.
* Throughput: images/s at ``--throughput-batch`` (median of ``--throughput-repeats``
  timed forwards after one warm-up), 0 skips it.
* Peak memory (PyTorch backends only): the most memory the forward holds on top of
  what was allocated before it. CUDA: ``torch.cuda.max_memory_allocated``. CPU: replayed
  from the allocation/free events of ``torch.profiler`` (``profile_memory=True``).
* CPU timings use ``torch.inference_mode`` and ``--threads`` intra-op threads
  (default: all cores); CUDA timings synchronise around each forward.
* Layout: ``--memory-format contiguous|channels_last|both`` for the PyTorch backends.
  Deploy mode of ours is channels-last by design (``switch_to_deploy(channels_last=
  True)``); with ``contiguous`` it is built with ``channels_last=False``.
"""
import argparse
import copy
import csv
import io
import math
import os
import statistics
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ghostnetv2_mm.models import ARCH_WIDTHS, GhostNetV2  # noqa: E402

TIMM_V2 = {'1.0x': 'ghostnetv2_100', '1.3x': 'ghostnetv2_130', '1.6x': 'ghostnetv2_160'}
TIMM_V1 = {'1.0x': 'ghostnet_100', '1.3x': 'ghostnet_130', '1.6x': 'ghostnet_160'}
ONNX_BACKENDS = ('ghostnetv2-onnx', 'ghostnetv2-onnx-int8', 'ghostnetv2-openvino')
PEERS = ('ghostnetv2', 'ghostnetv2-deploy', *ONNX_BACKENDS, 'timm-ghostnetv2',
         'ghostnet', 'ghostnetv3', 'timm-ghostnet', 'mobilenetv2', 'mobilenetv3-large',
         'resnet18')
# this project's other GhostNet-family backbones (registered by ghostnetv2_mm.models
# when present): benchmark name -> registry type
FAMILY = {'ghostnet': 'GhostNet', 'ghostnetv3': 'GhostNetV3'}
# published ImageNet-1k top-1 (%), see docs/benchmarks.md for the sources
TOP1 = {'ghostnetv2': 75.3, 'ghostnetv2-deploy': 75.3, 'timm-ghostnetv2': 75.3,
        'ghostnetv2-onnx': 75.3, 'ghostnetv2-openvino': 75.3, 'ghostnet': 73.9,
        'timm-ghostnet': 73.9, 'ghostnetv3': 77.1, 'mobilenetv2': 71.86,
        'mobilenetv3-large': 74.04, 'resnet18': 69.90}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ models
class _Features(nn.Module):
    """Calls a model's feature extractor (timm's ``forward_features``)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class TimmTrunk(nn.Module):
    """timm's GhostNetV2 stem and blocks, tapped where this project's backbone is
    (``layer0`` = stem, ``layer{i}`` = ``blocks[i - 1]``), so that a detector can run
    on timm's implementation of the same network."""

    def __init__(self, timm_model: nn.Module, out_indices):
        super().__init__()
        self.stem = nn.Sequential(timm_model.conv_stem, timm_model.bn1, timm_model.act1)
        self.blocks = timm_model.blocks
        self.out_indices = tuple(out_indices)

    def forward(self, x):
        x = self.stem(x)
        outs = [x] if 0 in self.out_indices else []
        for i, block in enumerate(self.blocks, start=1):
            if i > self.out_indices[-1]:
                break
            x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class _TensorMode(nn.Module):
    """An OpenMMLab model's plain network forward (for counting MACs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x, mode='tensor')


class Backend:
    """One timed thing: ``run(x)`` on a (N, 3, H, W) float tensor. ``module`` is the
    PyTorch module (None for runtimes that are not PyTorch), used for peak memory."""

    def __init__(self, run: Callable, layout: str, module: Optional[nn.Module] = None):
        self.run, self.layout, self.module = run, layout, module


def torch_backend(model: nn.Module, cl: bool, device, amp: bool, amp_dtype) -> Backend:
    model = model.to(device)
    if cl:
        model = model.to(memory_format=torch.channels_last)

    def run(x):
        if cl:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype,
                                                    enabled=amp):
            return model(x)
    return Backend(run, 'channels_last' if cl else 'contiguous', model)


def onnx_backends(wrapper: nn.Module, names, workdir: str, threads: Optional[int],
                  tag: str, size: Tuple[int, int]) -> Dict[str, Backend]:
    """onnxruntime (float32 / INT8) and OpenVINO runners of ``wrapper``'s ONNX export;
    a backend whose package is missing is skipped with a message."""
    from ghostnetv2_mm.deployment import export_onnx, onnx_session, quantize_int8
    path = os.path.join(workdir, f'{tag}.onnx')
    export_onnx(wrapper, path, size)
    out: Dict[str, Backend] = {}

    def ort_run(session):
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x.numpy()})

    for backend in names:
        kind = backend.rsplit('-', 1)[-1] if not backend.endswith('int8') else 'int8'
        try:
            if kind == 'onnx':
                out[backend] = Backend(ort_run(onnx_session(path, threads)), 'onnx')
            elif kind == 'int8':
                q_path = os.path.join(workdir, f'{tag}-int8.onnx')
                gen = torch.Generator().manual_seed(0)
                calib = [torch.randn(1, 3, *size, generator=gen).numpy() for _ in range(16)]
                quantize_int8(path, q_path, calib)
                out[backend] = Backend(ort_run(onnx_session(q_path, threads)), 'onnx int8')
            elif kind == 'openvino':
                import openvino as ov
                core = ov.Core()
                config = {'INFERENCE_NUM_THREADS': threads} if threads else {}
                compiled = core.compile_model(core.read_model(path), 'CPU', config)
                out[backend] = Backend(lambda x, c=compiled: c(x.numpy()), 'openvino')
        except ImportError as exc:
            log(f'skipping {backend}: {exc}')
    return out


def build_peer(name: str, arch: str, channels_last: bool) -> Optional[nn.Module]:
    """The PyTorch backbone called ``name`` (None when its package or class is missing).

    All produce the full trunk up to the last stride-32 features: ours with every
    layer run (out_indices up to layer 10, the 960-channel conv), timm's
    ``forward_features`` (which ends with the same conv).
    """
    if name in ('ghostnetv2', 'ghostnetv2-deploy') or name in ONNX_BACKENDS:
        model = GhostNetV2(arch, out_indices=(3, 5, 7, 9, 10)).eval()
        if name != 'ghostnetv2':
            # ONNX has no memory layout: the exported deploy graph is NCHW.
            model.switch_to_deploy(channels_last=channels_last and name.endswith('deploy'))
        return model
    if name in FAMILY:
        from mmengine.registry import MODELS
        cls = MODELS.get(FAMILY[name])
        if cls is None:
            log(f'{FAMILY[name]} is not registered in this version of ghostnetv2_mm')
            return None
        return cls(arch, out_indices=(3, 5, 7, 9, 10)).eval()
    if name.startswith('timm-'):
        try:
            import timm
        except ImportError as exc:
            log(f'timm cannot be imported: {exc}')
            return None
        timm_name = TIMM_V2[arch] if name == 'timm-ghostnetv2' else TIMM_V1[arch]
        return _Features(timm.create_model(timm_name, pretrained=False)).eval()
    try:
        from mmpretrain.models import MobileNetV2, MobileNetV3, ResNet
    except ImportError as exc:
        log(f'mmpretrain cannot be imported: {exc}')
        return None
    if name == 'mobilenetv2':
        model = MobileNetV2(widen_factor=1.0, out_indices=(7,))
    elif name == 'mobilenetv3-large':
        model = MobileNetV3(arch='large', out_indices=(16,))
    elif name == 'resnet18':
        model = ResNet(depth=18, out_indices=(3,))
    else:
        raise ValueError(f'unknown model {name!r}; allowed: {", ".join(PEERS)}')
    model.eval()  # (mmpretrain's train() overrides return None, so no chaining)
    return model


def parse_config_spec(text: str) -> Tuple[str, Tuple[int, int]]:
    """``CONFIG@HxW`` (or ``CONFIG@S``) -> (config path, (H, W))."""
    if '@' not in text:
        raise argparse.ArgumentTypeError(f'bad --configs entry {text!r}: use CONFIG@HxW')
    path, size = text.rsplit('@', 1)
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f'--configs {text!r}: {path} not found')
    return path, parse_size(size)


def predict_runner(model: nn.Module, device, amp: bool, amp_dtype) -> Backend:
    """The model's own ``predict`` (what a PyTorch user runs: network and the
    toolkit's post-processing) on a batch that fills the input tensor."""
    from ghostnetv2_mm.deployment.verify import whole_batch_samples
    model = model.to(device)
    is_detector = hasattr(model, 'bbox_head') or hasattr(model, 'roi_head')

    def run(x):
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype,
                                                    enabled=amp):
            if not is_detector:
                return model.predict(x)
            return model.predict(x, whole_batch_samples(x), rescale=False)
    return Backend(run, 'pytorch predict', model)


def build_config_backends(config: str, size, args, device, amp_dtype,
                          workdir: str) -> Tuple[Dict[str, Backend], Dict[str, nn.Module]]:
    """Whole-model backends of ``config``: the PyTorch ``predict`` of the model with
    timm's trunk (undilated backbones only), eager and deploy (channels-last), and the
    exported graph on the runtimes asked for in --models (float32 only)."""
    import timm
    from mmengine.config import Config

    from ghostnetv2_mm.deployment import wrap_for_export
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # nothing downloaded: random weights
    name = os.path.splitext(os.path.basename(config))[0]
    torch.manual_seed(0)
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    model.init_weights()  # the toolkit's own initialisation (e.g. RetinaNet's prior)
    model.eval()
    backbone = model.backbone
    variants: Dict[str, nn.Module] = {}
    bcfg = cfg.model.backbone
    if (bcfg.get('type') == 'GhostNetV2' and not bcfg.get('dilations')
            and not bcfg.get('strides')):
        timm_model = copy.deepcopy(model)
        timm_model.backbone = TimmTrunk(timm.create_model(
            TIMM_V2[bcfg.get('arch', '1.0x')], pretrained=False), backbone.out_indices)
        variants[f'{name} timm'] = timm_model.eval()
    variants[f'{name} eager'] = model
    deployed = copy.deepcopy(model)
    deployed.backbone.switch_to_deploy(channels_last=True)
    variants[f'{name} deploy'] = deployed
    out = {key: predict_runner(variant, device, args.amp, amp_dtype)
           for key, variant in variants.items()}
    modules = {key: variant for key, variant in variants.items()}
    wanted = [b for b in args.models if b in ONNX_BACKENDS and not b.endswith('int8')]
    if wanted and device.type == 'cpu':
        nchw = copy.deepcopy(model)
        nchw.backbone.switch_to_deploy(channels_last=False)
        backends = onnx_backends(wrap_for_export(nchw), wanted, workdir, args.threads,
                                 name, size)
        for b, backend in backends.items():
            out[f'{name} {b.split("-", 1)[1]}'] = backend
    return out, modules


# ---------------------------------------------------------------------- compute bound
def peak_flops(threads: Optional[int], n: int = 2048, repeats: int = 5) -> float:
    """This CPU's float32 FLOP/s: best of ``repeats`` (n x n) @ (n x n) products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float('inf')
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def macs_of(module: nn.Module, x: torch.Tensor) -> Optional[int]:
    from ghostnetv2_mm.utils import count_macs
    try:
        return count_macs(module, x)[0]
    except Exception as exc:  # noqa: BLE001 - a missing figure, not a failed benchmark
        log(f'MACs not counted ({type(exc).__name__}: {exc})')
        return None


# --------------------------------------------------------------------------- measuring
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _timed(fn: Callable, x: torch.Tensor, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn(x)
    _sync(device)
    return time.perf_counter() - start


def percentile(values: List[float], q: float) -> float:
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def peak_memory(fn: Callable, x: torch.Tensor, device: torch.device) -> float:
    """Peak bytes held by one forward on top of what was allocated before it."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(x)
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(x)
    timeline = []
    for event in prof.events():
        if event.name == '[memory]':  # frees (and a few allocations) outside any op
            timeline.append((event.time_range.start, event.cpu_memory_usage))
        elif event.self_cpu_memory_usage:
            timeline.append((event.time_range.start, event.self_cpu_memory_usage))
    current = peak = 0
    for _, nbytes in sorted(timeline, key=lambda item: item[0]):
        current += nbytes
        peak = max(peak, current)
    return float(peak)


def parse_size(text: str) -> Tuple[int, int]:
    parts = text.lower().replace(',', 'x').split('x')
    if len(parts) == 1:
        parts = parts * 2
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f'bad size {text!r}: use H or HxW') from None
    if len(parts) != 2 or h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f'bad size {text!r}: use H or HxW')
    return h, w


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--models', nargs='*', default=list(PEERS), choices=PEERS,
                        metavar='NAME', help=f'backbones to compare: {", ".join(PEERS)} '
                        '(the -onnx/-onnx-int8/-openvino names also add those backends '
                        'to --configs; none: only --configs)')
    parser.add_argument('--configs', nargs='+', type=parse_config_spec, default=[],
                        metavar='CONFIG@HxW', help='whole models to time at that size')
    parser.add_argument('--baseline', default='timm-ghostnetv2',
                        help='the backbone every ratio is relative to (default: timm '
                        'ghostnetv2; for --configs the timm-trunk model, else eager)')
    parser.add_argument('--sizes', type=parse_size, nargs='*',
                        default=[(224, 224), (640, 640), (800, 1333)],
                        help='backbone input sizes, H or HxW (default: 224 640 800x1333)')
    parser.add_argument('--batch', type=int, default=1, help='latency batch size')
    parser.add_argument('--repeats', type=int, default=20, help='timed rounds per size')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--throughput-batch', type=int, default=8,
                        help='batch for images/s (0: skip)')
    parser.add_argument('--throughput-repeats', type=int, default=3)
    parser.add_argument('--no-memory', action='store_true', help='skip peak memory')
    parser.add_argument('--device', default='cpu', help='cpu or cuda[:i]')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--memory-format', default='channels_last',
                        choices=('contiguous', 'channels_last', 'both'))
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU intra-op threads, PyTorch and onnxruntime (default: all)')
    parser.add_argument('--out', help='write the table: .md (Markdown) or .csv')
    parser.add_argument('--plot', help='PNG of latency (first size) against published '
                        'ImageNet top-1, one point per backbone (matplotlib)')
    args = parser.parse_args(argv)
    for name in ('batch', 'repeats'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.throughput_batch < 0 or args.warmup < 0 or args.throughput_repeats < 1:
        parser.error('--throughput-batch, --warmup must be >= 0, --throughput-repeats >= 1')
    if not args.configs and not (args.models and args.sizes):
        parser.error('nothing to time: give --models and --sizes, or --configs')
    return args


def time_group(backends: Dict[str, Backend], baseline: Optional[str], size, args,
               device, label: str, macs: Dict[str, Optional[int]], flops: float,
               macs_module: Dict[str, nn.Module]) -> List[dict]:
    """Interleaved rounds over ``backends`` at ``size``; one row per backend."""
    h, w = size
    names = list(backends)
    x = torch.randn(args.batch, 3, h, w, device=device)
    log(f'[{label}] {h}x{w}: warm-up ({len(names)} models)')
    for n in names:
        for _ in range(args.warmup):
            backends[n].run(x)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for r in range(args.repeats):
        for n in names:
            times[n].append(_timed(backends[n].run, x, device))
        if (r + 1) % max(1, args.repeats // 5) == 0 or r + 1 == args.repeats:
            log(f'[{label}] {h}x{w}: round {r + 1}/{args.repeats}')
    rows = []
    for n in names:
        t = times[n]
        row = dict(model=n, size=f'{h}x{w}', batch=args.batch, layout=backends[n].layout,
                   median_ms=statistics.median(t) * 1e3,
                   p10_ms=percentile(t, 0.1) * 1e3, p90_ms=percentile(t, 0.9) * 1e3)
        if baseline is not None:
            row['ratio'] = statistics.median(a / b for a, b in zip(t, times[baseline]))
            row['speedup'] = 1.0 / row['ratio']
        key = n.replace(' [CL]', '')
        if key in macs and macs[key] is not None and device.type == 'cpu':
            row['gmacs'] = macs[key] * args.batch / 1e9
            row['bound_ms'] = 2 * macs[key] * args.batch / flops * 1e3
            if baseline is not None:
                row['bound_ratio'] = row['bound_ms'] / (statistics.median(times[baseline]) * 1e3)
        if not args.no_memory and backends[n].module is not None:
            row['peak_mem_mb'] = peak_memory(backends[n].run, x, device) / 2 ** 20
        if args.throughput_batch:
            xb = torch.randn(args.throughput_batch, 3, h, w, device=device)
            backends[n].run(xb)
            tb = [_timed(backends[n].run, xb, device) for _ in range(args.throughput_repeats)]
            row['throughput_img_s'] = args.throughput_batch / statistics.median(tb)
        row['top1'] = TOP1.get(key)
        rows.append(row)
        log(f'  {n:<44} {row["median_ms"]:9.2f} ms'
            + (f'  x{row["ratio"]:.3f} of {baseline}\'s time' if baseline else ''))
    return rows


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    if args.threads:
        torch.set_num_threads(args.threads)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    formats = (['contiguous', 'channels_last'] if args.memory_format == 'both'
               else [args.memory_format])
    flops = peak_flops(args.threads) if device.type == 'cpu' else float('nan')
    if device.type == 'cpu':
        log(f'peak float32 rate (2048^3 GEMM, best of 5): {flops / 1e9:.1f} GFLOP/s')
    workdir = tempfile.mkdtemp(prefix='ghostnetv2-bench-')
    rows: List[dict] = []

    # backbones: one interleaved group per size
    if args.models and args.sizes:
        backends: Dict[str, Backend] = {}
        modules: Dict[str, nn.Module] = {}
        for fmt in formats:
            cl = fmt == 'channels_last'
            suffix = ' [CL]' if cl and len(formats) > 1 else ''
            for name in args.models:
                if name in ONNX_BACKENDS:
                    continue
                model = build_peer(name, args.arch, cl)
                if model is None:
                    log(f'skipping {name}: not available here')
                    continue
                backends[name + suffix] = torch_backend(model, cl, device, args.amp,
                                                        amp_dtype)
                modules[name] = model
        wanted = [n for n in args.models if n in ONNX_BACKENDS]
        if wanted and device.type == 'cpu':
            from ghostnetv2_mm.deployment import BackboneExport
            deployed = build_peer('ghostnetv2-onnx', args.arch, False)
            backends.update(onnx_backends(BackboneExport(deployed), wanted, workdir,
                                          args.threads, 'backbone', args.sizes[0]))
        baseline = args.baseline if args.baseline in backends else next(
            (n for n in backends if n.startswith(args.baseline)), None)
        log(f'{len(backends)} backbones: {", ".join(backends)}; baseline {baseline}; '
            f'{torch.get_num_threads()} threads')
        for s_idx, size in enumerate(args.sizes):
            x = torch.zeros(1, 3, *size)
            ours = macs_of(build_peer('ghostnetv2', args.arch, False), x)
            macs = {n: (macs_of(m, x) if not n.startswith('ghostnetv2') else ours)
                    for n, m in modules.items()}
            macs.update({n: ours for n in backends if n in ONNX_BACKENDS})
            rows += time_group(backends, baseline, size, args, device,
                               f'size {s_idx + 1}/{len(args.sizes)}', macs, flops, modules)

    # whole models: one interleaved group per config
    for c_idx, (config, size) in enumerate(args.configs):
        backends, modules = build_config_backends(config, size, args, device, amp_dtype,
                                                  workdir)
        base = next((n for n in backends if n.endswith(' timm')), None) or next(iter(backends))
        eager = next(n for n in backends if n.endswith(' eager'))
        count = macs_of(_TensorMode(modules[eager]).eval(), torch.zeros(1, 3, *size))
        macs = {n: count for n in backends}
        rows += time_group(backends, base, size, args, device,
                           f'config {c_idx + 1}/{len(args.configs)}', macs, flops, modules)

    table = format_table(rows, args, device, amp_dtype, flops)
    print(table)
    if args.out:
        write_out(args.out, rows, table)
        log(f'wrote {args.out}')
    if args.plot:
        plot([r for r in rows if r.get('top1') is not None], args.plot)
        log(f'wrote {args.plot}')
    return rows


def plot(rows, path: str) -> None:
    """Latency at the first measured size against published top-1."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    first = rows[0]['size']
    points = [r for r in rows if r['size'] == first and r.get('top1') is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in points:
        ours = r['model'].startswith('ghostnetv2')
        ax.scatter(r['median_ms'], r['top1'], s=60 if ours else 40,
                   marker='*' if ours else 'o', color='C3' if ours else 'C0')
        ax.annotate(f"{r['model']} ({r['layout'].replace('channels_last', 'CL')})",
                    (r['median_ms'], r['top1']), textcoords='offset points',
                    xytext=(5, 4), fontsize=8)
    ax.set_xlabel(f'latency, ms (median, batch {rows[0]["batch"]}, input {first})')
    ax.set_ylabel('ImageNet-1k top-1, % (published)')
    ax.set_title('CPU latency vs. accuracy (this machine)')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


COLUMNS = [('model', 'model', '{}'), ('size', 'input', '{}'), ('layout', 'backend / layout', '{}'),
           ('median_ms', 'latency ms (median)', '{:.2f}'),
           ('p10_ms', 'p10', '{:.2f}'), ('p90_ms', 'p90', '{:.2f}'),
           ('ratio', 'time vs baseline', '{:.3f}x'),
           ('gmacs', 'GMACs', '{:.3f}'), ('bound_ms', 'compute bound ms', '{:.2f}'),
           ('bound_ratio', 'bound vs baseline', '{:.3f}x'),
           ('throughput_img_s', 'img/s @batch', '{:.1f}'),
           ('peak_mem_mb', 'peak MB', '{:.1f}'), ('top1', 'top-1', '{}')]


def format_table(rows, args, device, amp_dtype, flops) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r and r[c[0]] is not None for r in rows)]
    header = [c[1] for c in cols]
    out = io.StringIO()
    out.write(f'device {device}, {"AMP " + str(amp_dtype).split(".")[-1] if args.amp else "float32"}, '
              f'batch {args.batch} (throughput batch {args.throughput_batch}), '
              f'{torch.get_num_threads()} threads, {args.repeats} interleaved rounds; '
              'time vs baseline = median over rounds of model time / baseline time '
              '(baseline: timm-ghostnetv2 for backbones, the timm-trunk model, else the '
              'eager one, for whole models)')
    if device.type == 'cpu':
        out.write(f'; compute bound = 2 x MACs / {flops / 1e9:.1f} GFLOP/s (peak of a '
                  '2048^3 float32 GEMM here)')
    out.write('\n\n| ' + ' | '.join(header) + ' |\n')
    out.write('|' + '|'.join('---' for _ in header) + '|\n')
    for r in rows:
        out.write('| ' + ' | '.join(fmt.format(r[k]) if r.get(k) is not None else '-'
                                    for k, _, fmt in cols) + ' |\n')
    return out.getvalue()


def write_out(path: str, rows, table: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if path.endswith('.csv'):
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(path, 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    else:
        with open(path, 'w') as f:
            f.write(table)


if __name__ == '__main__':
    main()
