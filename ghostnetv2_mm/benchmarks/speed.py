"""Speed of GhostNetV2 and its peers: backends (PyTorch eager and deploy, onnxruntime
float32 and INT8, OpenVINO), whole detectors and segmentors from configs, and the
compute bound of this CPU, timed side by side in interleaved rounds
(:mod:`.timing`). The method is described in tools/analysis/benchmark.py."""
import copy
import os
import statistics
import sys
import tempfile
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ghostnetv2_mm.errors import UserError
from ghostnetv2_mm.models import FAMILY, GhostNetV2

from .catalogue import OLD_NAMES, Network, resolve
from .timing import device_sync, interleaved, median_ratio, peak_memory, percentile

# Rows: networks of the catalogue (.catalogue; a GhostNet-family name at --arch) and
# ways of running one (timm's build, the deploy form, onnxruntime, OpenVINO).
ONNX_BACKENDS = ('ghostnetv2-onnx', 'ghostnetv2-onnx-int8', 'ghostnetv2-openvino')
PEERS = ('ghostnetv2', 'ghostnetv2-deploy', *ONNX_BACKENDS, 'timm-ghostnetv2',
         'ghostnet', 'ghostnetv3', 'timm-ghostnet', 'mobilenetv2', 'mobilenetv3-large',
         'resnet18')
# the timm builds of this project's networks (rows named timm-NETWORK)
TIMM_BUILDS = {'timm-ghostnetv2': 'GhostNetV2', 'timm-ghostnet': 'GhostNet'}
# the last stride-32 output of the toolkit-built peers (their index numbering)
FINAL_INDEX = {'mobilenetv2': 7, 'mobilenetv3-large': 16, 'resnet18': 3}
_WAYS = ('-deploy', '-onnx-int8', '-onnx', '-openvino')
TAPS = (3, 5, 7, 9, 10)  # every stride's last layer, to the 960-channel conv


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ models
class Backend:
    """One timed thing: ``run(x)`` on a (N, 3, H, W) float tensor. ``module`` is the
    PyTorch module (None for runtimes that are not PyTorch), used for peak memory."""

    def __init__(self, run: Callable, layout: str, module: Optional[nn.Module] = None):
        self.run, self.layout, self.module = run, layout, module


def torch_backend(model: nn.Module, *, channels_last: bool, device, amp: bool,
                  amp_dtype) -> Backend:
    """``model`` under ``torch.inference_mode`` (and autocast when ``amp``)."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def run(x):
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp_dtype,
                                                    enabled=amp):
            return model(x)
    return Backend(run, 'channels_last' if channels_last else 'contiguous', model)


def onnx_backends(wrapper: nn.Module, names: Sequence[str], *, workdir: str,
                  threads: Optional[int], tag: str,
                  size: Tuple[int, int]) -> Dict[str, Backend]:
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


def row_name(text: str) -> str:
    """argparse ``type`` of ``--models``: a row name; an old spelling of a network is
    refused naming today's (other unknown names are left to ``choices``)."""
    if text not in PEERS and text in OLD_NAMES:
        import argparse
        raise argparse.ArgumentTypeError(f'{text!r} is now called {OLD_NAMES[text]!r} (one '
                                         'name in every benchmark tool)')
    return text


def peer_network(name: str, arch: str) -> Network:
    """The catalogue entry that row ``name`` runs (``timm-X`` and ``X-deploy`` /
    ``-onnx`` / ``-onnx-int8`` / ``-openvino`` are ways of running network X)."""
    stem = name[len('timm-'):] if name.startswith('timm-') else name
    for way in _WAYS:
        if stem.endswith(way):
            stem = stem[:-len(way)]
    return resolve(stem, width=arch, argument='--models')


def peer_top1(name: str, arch: str) -> Optional[float]:
    """The catalogue's ImageNet top-1 of row ``name``'s network at ``arch`` (None for
    INT8, whose accuracy is not the published one, and where none is listed)."""
    if name.endswith('-int8'):
        return None
    try:
        return peer_network(name, arch).top1
    except UserError:  # e.g. GhostNet V1 at 1.3x: no official weights
        return None


def build_peer(name: str, arch: str, channels_last: bool) -> Optional[nn.Module]:
    """The PyTorch backbone called ``name`` (None when its package or, for timm, its
    width is missing).

    All produce the full trunk up to the last stride-32 features: ours with every
    layer run (out_indices up to layer 10, the 960-channel conv), timm's
    ``forward_features`` (which ends with the same conv).
    """
    if name in ('ghostnetv2', 'ghostnetv2-deploy') or name in ONNX_BACKENDS:
        model = GhostNetV2(arch, out_indices=TAPS).eval()
        if name != 'ghostnetv2':
            # ONNX has no memory layout: the exported deploy graph is NCHW.
            model.switch_to_deploy(channels_last=channels_last and name.endswith('deploy'))
        return model
    if name in TIMM_BUILDS:
        from .timm_reference import TimmFeatures, create_timm_model
        try:
            return TimmFeatures(create_timm_model(TIMM_BUILDS[name], arch)).eval()
        except ImportError as exc:
            log(f'timm cannot be imported: {exc}')
        except ValueError as exc:  # a width timm does not have (GhostNet V1 at 1.6x)
            log(str(exc))
        return None
    if name not in PEERS:
        raise ValueError(f'unknown model {name!r}; allowed: {", ".join(PEERS)}')
    network = peer_network(name, '1.0x')  # (which network: every family width is built)
    if network.family:  # the GhostNet family at --arch: this project's build
        return FAMILY[network.family](arch, out_indices=TAPS).eval()
    try:
        from mmpretrain.registry import MODELS
        import mmpretrain.models  # noqa: F401  (registers the toolkit's backbones)
    except ImportError as exc:
        log(f'mmpretrain cannot be imported: {exc}')
        return None
    model = MODELS.build(dict(network.implementation, out_indices=(FINAL_INDEX[name],)))
    model.eval()  # (mmpretrain's train() overrides return None, so no chaining)
    return model


def predict_runner(model: nn.Module, *, device, amp: bool, amp_dtype) -> Backend:
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


def build_config_backends(config: str, size: Tuple[int, int], *, models: Sequence[str],
                          threads: Optional[int], device, amp: bool, amp_dtype,
                          workdir: str) -> Tuple[Dict[str, Backend], nn.Module]:
    """Whole-model backends of ``config`` and its eager model: the PyTorch ``predict``
    of the model with timm's trunk (undilated backbones only), eager and deploy
    (channels-last), and the exported graph on the runtimes named in ``models``
    (float32 only)."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm

    from ghostnetv2_mm.deployment import wrap_for_export
    from ghostnetv2_mm.utils.toolkit import build_model_from_config

    from .timm_reference import TimmTrunk, create_timm_model
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None  # nothing downloaded: random weights
    name = os.path.splitext(os.path.basename(config))[0]
    torch.manual_seed(0)
    model = revert_sync_batchnorm(build_model_from_config(cfg))
    model.init_weights()  # the toolkit's own initialisation (e.g. RetinaNet's prior)
    model.eval()
    backbone = model.backbone
    variants: Dict[str, nn.Module] = {}
    bcfg = cfg.model.backbone
    if (bcfg.get('type') == 'GhostNetV2' and not bcfg.get('dilations')
            and not bcfg.get('strides')):
        timm_model = copy.deepcopy(model)
        timm_model.backbone = TimmTrunk(create_timm_model('GhostNetV2', bcfg.get(
            'arch', '1.0x')), backbone.out_indices)
        variants[f'{name} timm'] = timm_model.eval()
    variants[f'{name} eager'] = model
    deployed = copy.deepcopy(model)
    deployed.backbone.switch_to_deploy(channels_last=True)
    variants[f'{name} deploy'] = deployed
    out = {key: predict_runner(variant, device=device, amp=amp, amp_dtype=amp_dtype)
           for key, variant in variants.items()}
    wanted = [b for b in models if b in ONNX_BACKENDS and not b.endswith('int8')]
    if wanted and device.type == 'cpu':
        nchw = copy.deepcopy(model)
        nchw.backbone.switch_to_deploy(channels_last=False)
        backends = onnx_backends(wrap_for_export(nchw), wanted, workdir=workdir,
                                 threads=threads, tag=name, size=size)
        for b, backend in backends.items():
            out[f'{name} {b.split("-", 1)[1]}'] = backend
    return out, model


# ---------------------------------------------------------------------- compute bound
def peak_flops(threads: Optional[int], n: int = 2048, repeats: int = 5) -> float:
    """This CPU's float32 FLOP/s: best of ``repeats`` (n x n) @ (n x n) products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    times = interleaved({'mm': lambda: torch.mm(a, b)}, rounds=repeats, warmup=1)
    return 2 * n ** 3 / min(times['mm'])


def macs_of(module: nn.Module, x: torch.Tensor) -> Optional[int]:
    from ghostnetv2_mm.utils import count_macs
    try:
        return count_macs(module, x)[0]
    except Exception as exc:  # noqa: BLE001 - a missing figure, not a failed benchmark
        log(f'MACs not counted ({type(exc).__name__}: {exc})')
        return None


# --------------------------------------------------------------------------- measuring
def time_group(backends: Dict[str, Backend], *, baseline: Optional[str],
               size: Tuple[int, int], device, label: str, macs: Dict[str, Optional[int]],
               flops: float, batch: int = 1, repeats: int = 20, warmup: int = 3,
               throughput_batch: int = 8, throughput_repeats: int = 3,
               memory: bool = True, top1: Optional[Dict[str, float]] = None) -> List[dict]:
    """Interleaved rounds over ``backends`` at ``size``; one row per backend.

    Args:
        backends (dict): name -> :class:`Backend`, timed in this order every round.
        baseline (str, optional): the name every ratio is relative to.
        size (tuple): input (H, W).
        device: where the inputs live.
        label (str): names the group in the progress messages.
        macs (dict): name (without ' [CL]') -> MACs per image, or None.
        flops (float): this CPU's peak float32 rate, for the compute bound.
        batch (int): latency batch.
        repeats (int): timed rounds.
        warmup (int): untimed calls of each backend first.
        throughput_batch (int): batch of the images/s figure (0: none).
        throughput_repeats (int): timed calls of the throughput figure (median).
        memory (bool): measure the peak memory of the PyTorch backends.
        top1 (dict, optional): name (without ' [CL]') -> ImageNet top-1 of its network.
    """
    h, w = size
    names = list(backends)
    sync = device_sync(device)
    x = torch.randn(batch, 3, h, w, device=device)
    log(f'[{label}] {h}x{w}: warm-up ({len(names)} models)')

    def on_round(done):
        if done % max(1, repeats // 5) == 0 or done == repeats:
            log(f'[{label}] {h}x{w}: round {done}/{repeats}')

    times = interleaved({n: partial(backends[n].run, x) for n in names}, rounds=repeats,
                        warmup=warmup, sync=sync, on_round=on_round)
    rows = []
    for n in names:
        t = times[n]
        row = dict(model=n, size=f'{h}x{w}', batch=batch, layout=backends[n].layout,
                   median_ms=statistics.median(t) * 1e3,
                   p10_ms=percentile(t, 0.1) * 1e3, p90_ms=percentile(t, 0.9) * 1e3)
        if baseline is not None:
            row['ratio'] = median_ratio(t, times[baseline])
            row['speedup'] = 1.0 / row['ratio']
        key = n.replace(' [CL]', '')
        if key in macs and macs[key] is not None and device.type == 'cpu':
            row['gmacs'] = macs[key] * batch / 1e9
            row['bound_ms'] = 2 * macs[key] * batch / flops * 1e3
            if baseline is not None:
                row['bound_ratio'] = row['bound_ms'] / (statistics.median(times[baseline]) * 1e3)
        if memory and backends[n].module is not None:
            row['peak_mem_mb'] = peak_memory(partial(backends[n].run, x), device) / 2 ** 20
        if throughput_batch:
            xb = torch.randn(throughput_batch, 3, h, w, device=device)
            tb = interleaved({n: partial(backends[n].run, xb)}, rounds=throughput_repeats,
                             warmup=1, sync=sync)[n]
            row['throughput_img_s'] = throughput_batch / statistics.median(tb)
        row['top1'] = (top1 or {}).get(key)
        rows.append(row)
        log(f'  {n:<44} {row["median_ms"]:9.2f} ms'
            + (f'  x{row["ratio"]:.3f} of {baseline}\'s time' if baseline else ''))
    return rows


def run_speed_benchmark(*, arch: str = '1.0x', models: Sequence[str] = PEERS,
                        configs: Sequence[Tuple[str, Tuple[int, int]]] = (),
                        baseline: str = 'timm-ghostnetv2',
                        sizes: Sequence[Tuple[int, int]] = ((224, 224),),
                        batch: int = 1, repeats: int = 20, warmup: int = 3,
                        throughput_batch: int = 8, throughput_repeats: int = 3,
                        memory: bool = True, device: str = 'cpu', amp: bool = False,
                        memory_format: str = 'channels_last',
                        threads: Optional[int] = None) -> Tuple[List[dict], str]:
    """Time the backbones ``models`` at every size of ``sizes`` (one interleaved group
    per size), then each ``(config, (H, W))`` whole model (one group per config).

    Args:
        arch (str): the width of every GhostNet-family backbone.
        models (Sequence[str]): names from ``PEERS``; the ONNX names also add those
            runtimes to the config groups.
        configs (Sequence[tuple]): (config path, (H, W)) whole models.
        baseline (str): the backbone every backbone ratio is relative to (a config
            group's baseline is its timm-trunk model, else its eager one).
        sizes (Sequence[tuple]): backbone input sizes (H, W).
        batch (int): latency batch.
        repeats (int): timed rounds per group.
        warmup (int): untimed calls of each backend first.
        throughput_batch (int): batch of the images/s figure (0: none).
        throughput_repeats (int): timed calls of the throughput figure.
        memory (bool): measure peak memory (PyTorch backends).
        device (str): 'cpu' or 'cuda[:i]'.
        amp (bool): autocast (float16 on CUDA, bfloat16 on CPU).
        memory_format (str): 'contiguous', 'channels_last' or 'both'.
        threads (int, optional): CPU intra-op threads, PyTorch and the runtimes.

    Returns:
        tuple: (one dict per backend and group, the Markdown table).
    """
    from .speed_report import format_table
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    if threads:
        torch.set_num_threads(threads)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    formats = (['contiguous', 'channels_last'] if memory_format == 'both'
               else [memory_format])
    flops = peak_flops(threads) if device.type == 'cpu' else float('nan')
    if device.type == 'cpu':
        log(f'peak float32 rate (2048^3 GEMM, best of 5): {flops / 1e9:.1f} GFLOP/s')
    workdir = tempfile.mkdtemp(prefix='ghostnetv2-bench-')
    timing = dict(device=device, flops=flops, batch=batch, repeats=repeats, warmup=warmup,
                  throughput_batch=throughput_batch, memory=memory,
                  throughput_repeats=throughput_repeats)
    rows: List[dict] = []

    # backbones: one interleaved group per size
    if models and sizes:
        backends: Dict[str, Backend] = {}
        modules: Dict[str, nn.Module] = {}
        for fmt in formats:
            cl = fmt == 'channels_last'
            suffix = ' [CL]' if cl and len(formats) > 1 else ''
            for name in models:
                if name in ONNX_BACKENDS:
                    continue
                model = build_peer(name, arch, cl)
                if model is None:
                    log(f'skipping {name}: not available here')
                    continue
                backends[name + suffix] = torch_backend(
                    model, channels_last=cl, device=device, amp=amp, amp_dtype=amp_dtype)
                modules[name] = model
        wanted = [n for n in models if n in ONNX_BACKENDS]
        if wanted and device.type == 'cpu':
            from ghostnetv2_mm.deployment import BackboneExport
            deployed = build_peer('ghostnetv2-onnx', arch, False)
            backends.update(onnx_backends(BackboneExport(deployed), wanted,
                                          workdir=workdir, threads=threads,
                                          tag='backbone', size=sizes[0]))
        base = baseline if baseline in backends else next(
            (n for n in backends if n.startswith(baseline)), None)
        log(f'{len(backends)} backbones: {", ".join(backends)}; baseline {base}; '
            f'{torch.get_num_threads()} threads')
        for s_idx, size in enumerate(sizes):
            x = torch.zeros(1, 3, *size)
            ours = macs_of(build_peer('ghostnetv2', arch, False), x)
            macs = {n: (macs_of(m, x) if not n.startswith('ghostnetv2') else ours)
                    for n, m in modules.items()}
            macs.update({n: ours for n in backends if n in ONNX_BACKENDS})
            rows += time_group(backends, baseline=base, size=size, macs=macs,
                               label=f'size {s_idx + 1}/{len(sizes)}',
                               top1={n: peer_top1(n, arch) for n in models}, **timing)

    # whole models: one interleaved group per config
    for c_idx, (config, size) in enumerate(configs):
        from ghostnetv2_mm.deployment.wrappers import ClassifierExport
        backends, eager = build_config_backends(
            config, size, models=models, threads=threads, device=device, amp=amp,
            amp_dtype=amp_dtype, workdir=workdir)
        base = next((n for n in backends if n.endswith(' timm')), None) or next(iter(backends))
        # the network without post-processing (mode='tensor') is what MACs count
        count = macs_of(ClassifierExport(eager).eval(), torch.zeros(1, 3, *size))
        rows += time_group(backends, baseline=base, size=size,
                           macs={n: count for n in backends},
                           label=f'config {c_idx + 1}/{len(configs)}', **timing)

    table = format_table(rows, device=device, amp=amp, amp_dtype=amp_dtype, batch=batch,
                         throughput_batch=throughput_batch, repeats=repeats, flops=flops)
    return rows, table
