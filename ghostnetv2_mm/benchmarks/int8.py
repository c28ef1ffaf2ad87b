"""INT8 against float32 with onnxruntime: accuracy of a GhostNetV2 trained on the
scikit-learn digits with the transfer benchmark's protocols, and speed at 32x32 and
224x224. The study is described in tools/analysis/int8_study.py."""
import os
import statistics
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .timing import interleaved
from .transfer import build_model, finetune, linear_probe, load_digits_splits
from .transfer.data import Source, make_loader

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def depthwise_nodes(path: str) -> List[str]:
    """Names of the grouped (depthwise) Conv nodes of an ONNX file."""
    import onnx
    graph = onnx.load(path).graph
    return [n.name for n in graph.node if n.op_type == 'Conv'
            and any(a.name == 'group' and a.i > 1 for a in n.attribute)]


def batches(source: Source, img_size: int, num: Optional[int] = None,
            batch: int = 50) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """The first ``num`` images of ``source`` (all when None), preprocessed as the
    transfer benchmark does, as (input batches, label batches) numpy arrays."""
    out, labels, seen = [], [], 0
    for x, y in make_loader(source, img_size=img_size, batch_size=batch):
        out.append(x.numpy())
        labels.append(y.numpy())
        seen += len(x)
        if num is not None and seen >= num:
            break
    return out, labels


def median_ms(runs: Dict[str, Callable[[], object]], rounds: int) -> Dict[str, float]:
    """Median milliseconds of each run, ``rounds`` interleaved rounds after 3 warm-ups."""
    times = interleaved(runs, rounds=rounds, warmup=3)
    return {n: statistics.median(t) * 1e3 for n, t in times.items()}


def _pt2e_digits_accuracy(model, calib, test_x, test_y) -> Optional[float]:
    """Top-1 of ``model`` (deploy form) quantised through PT2E, run eagerly (the
    quantize / dequantize ops give the INT8 values oneDNN would compute), or None
    without torchao. Captured at batch 1: every image goes through alone."""
    try:
        import torchao  # noqa: F401
    except ImportError:
        return None
    from ghostnetv2_mm.deployment.quantize import quantize_pt2e_x86
    model = model.eval()  # (already in deploy form: exported before)
    one = [torch.from_numpy(b[i:i + 1]) for b in calib for i in range(len(b))]
    log('quantising: PT2E')
    quantized = quantize_pt2e_x86(model, one[0], one)
    correct = total = 0
    with torch.no_grad():
        for x, y in zip(test_x, test_y):
            for i in range(len(x)):
                out = quantized(torch.from_numpy(x[i:i + 1]))
                out = out[0] if isinstance(out, (tuple, list)) else out
                correct += int(out.argmax(1).item() == y[i])
                total += 1
    return correct / total


def run_int8_study(*, protocol: str = 'finetune', epochs: int = 10,
                   calib_images: int = 300, repeats: int = 30, threads: int = 1,
                   seed: int = 0) -> str:
    """Train, export, quantise and time; return the Markdown tables.

    Args:
        protocol (str): 'finetune' (every weight trained, random init) or 'linear'
            (the backbone as initialised and a fitted logistic-regression head).
        epochs (int): fine-tuning epochs.
        calib_images (int): training images the quantiser calibrates on.
        repeats (int): interleaved timing rounds.
        threads (int): threads of the timed runs (training uses torch's default).
        seed (int): seeds initialisation and training.
    """
    from ghostnetv2_mm.deployment import (BackboneExport, ClassifierExport, export_onnx,
                                          onnx_session, quantize_int8, run_onnx,
                                          prepare_for_export)
    from ghostnetv2_mm.models import GhostNetV2, build_classifier
    if protocol not in ('finetune', 'linear'):
        raise ValueError(f'run_int8_study: invalid protocol={protocol!r}; allowed: '
                         'finetune, linear')
    work = tempfile.mkdtemp(prefix='int8-study-')

    # ---- 1. the digits model
    train, test = load_digits_splits()
    model, _ = build_model('ghostnetv2-1.0x', num_classes=10, img_size=32, seed=seed)
    if protocol == 'finetune':
        log(f'fine-tuning on digits, {epochs} epochs')
        torch_acc = finetune(model, train, test, img_size=32, epochs=epochs, lr=0.05,
                             seed=seed, flip=False)  # (all cores)
    else:
        torch_acc = linear_probe(model, train, test, img_size=32, seed=seed,
                                 fold_head=True)
    torch.set_num_threads(threads)
    fp32 = os.path.join(work, 'digits.onnx')
    export_onnx(prepare_for_export(model), fp32, (32, 32))

    calib, _ = batches(train, 32, calib_images)
    test_x, test_y = batches(test, 32)
    variants = {'float32': fp32}
    from ghostnetv2_mm.deployment.quantize import PLACEMENTS
    for name, kwargs in [('int8', {}), ('int8 per-tensor', dict(per_channel=False)),
                         ('int8, depthwise float', dict(exclude_nodes=depthwise_nodes(fp32))),
                         ('int8 integer', dict(op_types=PLACEMENTS['integer'])),
                         ('int8 integer, float stem+layer1', dict(
                             op_types=PLACEMENTS['integer'],
                             float_prefixes=ROUTE_VARIANTS['int8 integer, float stem+layer1'][
                                 'float_prefixes']))]:
        path = os.path.join(work, name.replace(' ', '_').replace(',', '') + '.onnx')
        log(f'quantising: {name}')
        quantize_int8(fp32, path, calib, **kwargs)
        variants[name] = path
    sessions = {n: onnx_session(p, threads) for n, p in variants.items()}
    accuracy = {}
    for n, s in sessions.items():
        correct = sum(int((run_onnx(s, x)[0].argmax(1) == y).sum())
                      for x, y in zip(test_x, test_y))
        accuracy[n] = correct / sum(len(y) for y in test_y)
    pt2e_acc = _pt2e_digits_accuracy(model, calib, test_x, test_y)
    x32 = test_x[0][:1]
    small = median_ms({n: (lambda s=s: run_onnx(s, x32)) for n, s in sessions.items()},
                      repeats)

    # ---- 2. ImageNet-sized classifier and backbone at 224
    calib224, _ = batches(train, 224, calib_images, batch=20)
    torch.manual_seed(seed)
    big = {}
    for label, module in [
            ('classifier 1.0x (1000 classes)',
             ClassifierExport(prepare_for_export(build_classifier('1.0x')))),
            ('backbone 1.0x', BackboneExport(prepare_for_export(
                GhostNetV2('1.0x', out_indices=(10,)))))]:
        src = os.path.join(work, f'{label.split()[0]}224.onnx')
        dst = src.replace('.onnx', '-int8.onnx')
        export_onnx(module.eval(), src, (224, 224))
        log(f'quantising {label} at 224')
        quantize_int8(src, dst, calib224)
        s32, s8 = onnx_session(src, threads), onnx_session(dst, threads)
        x = calib224[0][:1]
        big[label] = median_ms({'float32': lambda: run_onnx(s32, x),
                                'int8': lambda: run_onnx(s8, x)}, repeats)

    how = (f'fine-tuned here, {epochs} epochs' if protocol == 'finetune' else
           'random-init backbone + logistic-regression head fitted here (linear probe)')
    lines = [f'Digits (GhostNetV2-1.0x {how}, 32x32 inputs, test '
             f'split of {sum(len(y) for y in test_y)} images; PyTorch accuracy '
             f'{100 * torch_acc:.2f}%), onnxruntime, batch 1, {threads} thread(s), '
             f'{repeats} interleaved rounds:', '',
             '| variant | top-1 (%) | change (points) | latency ms (median) | speed vs float32 |',
             '|---|---|---|---|---|']
    for n in variants:
        lines.append(f'| {n} | {100 * accuracy[n]:.2f} | '
                     f'{100 * (accuracy[n] - accuracy["float32"]):+.2f} | {small[n]:.3f} | '
                     f'{small["float32"] / small[n]:.2f}x |')
    if pt2e_acc is not None:
        lines.append(f'| PT2E int8 (X86InductorQuantizer, eager) | {100 * pt2e_acc:.2f} | '
                     f'{100 * (pt2e_acc - accuracy["float32"]):+.2f} | - | - |')
    lines += ['', f'224x224, random weights (speed only), calibrated on '
              f'{calib_images} digits images resized to 224:', '',
              '| model | float32 ms | int8 ms | speed vs float32 |', '|---|---|---|---|']
    for label, t in big.items():
        lines.append(f'| {label} | {t["float32"]:.2f} | {t["int8"]:.2f} | '
                     f'{t["float32"] / t["int8"]:.2f}x |')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------
# INT8 routes side by side: onnxruntime placements and PT2E, ours and the peers

#: The onnxruntime INT8 variants timed by :func:`run_int8_routes`:
#: label -> ``quantize_int8`` keyword arguments (op types from ``PLACEMENTS``).
#: ``float stem+layer1`` keeps the 3-channel stem and the first bottleneck (8-channel
#: depthwise convs at 112x112 for a 224 input, where onnxruntime's uint8 depthwise
#: kernel is slowest) in float32, for the files whose node names have them.
ROUTE_VARIANTS = {
    'int8 convs': dict(placement='convs'),
    'int8 integer': dict(placement='integer'),
    'int8 integer, float stem+layer1': dict(
        placement='integer', float_prefixes=('/backbone/layer0/', '/backbone/layer1/')),
}

#: The peers of :func:`run_int8_routes`: label -> timm model name.
ROUTE_PEERS = {'MobileNetV3-Large': 'mobilenetv3_large_100', 'GhostNet V1': 'ghostnet_100'}


def _ort_variants(src: str, calib: List[np.ndarray], work: str, ours: bool) -> Dict[str, str]:
    """Quantise ``src`` with every applicable ``ROUTE_VARIANTS`` entry."""
    from ghostnetv2_mm.deployment.quantize import PLACEMENTS, quantize_int8
    out = {}
    for label, kwargs in ROUTE_VARIANTS.items():
        kwargs = dict(kwargs)
        if kwargs.get('float_prefixes') and not ours:
            continue  # the prefixes name this project's layers
        dst = src.replace('.onnx', '-' + label.replace(' ', '_').replace(',', '')
                          .replace('+', '_') + '.onnx')
        log(f'quantising {os.path.basename(src)}: {label}')
        quantize_int8(src, dst, calib, op_types=PLACEMENTS[kwargs.pop('placement')],
                      **kwargs)
        out[label] = dst
    return out


def _pt2e_times(size: int, calib: List[np.ndarray], rounds: int, threads: int,
                seed: int) -> Dict[str, float]:
    """Median ms of our backbone: eager fp32, ``torch.compile`` fp32 and PT2E INT8
    under ``torch.compile`` (freezing on), interleaved, ``threads`` threads."""
    import torch._inductor.config as inductor_config
    from ghostnetv2_mm.deployment import BackboneExport, prepare_for_export
    from ghostnetv2_mm.deployment.quantize import quantize_pt2e_x86
    from ghostnetv2_mm.models import GhostNetV2
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = BackboneExport(prepare_for_export(GhostNetV2('1.0x', out_indices=(10,)))).eval()
    x = torch.from_numpy(calib[0][:1])
    log(f'PT2E at {size}: export, calibrate, convert')
    quantized = quantize_pt2e_x86(model, x, [torch.from_numpy(b[i:i + 1])
                                             for b in calib for i in range(len(b))])
    previous = inductor_config.freezing
    inductor_config.freezing = True  # constant weights: oneDNN int8 conv lowering
    try:
        with torch.no_grad():
            log(f'PT2E at {size}: torch.compile fp32 and int8 (minutes)')
            fp32, int8 = torch.compile(model), torch.compile(quantized)
            fp32(x), int8(x)
            # one thread: PyTorch runs the ops on the calling thread, so its CPU
            # time leaves out the waits for a core on a loaded machine
            times = interleaved({'PyTorch eager fp32': lambda: model(x),
                                 'torch.compile fp32': lambda: fp32(x),
                                 'PT2E int8 + torch.compile': lambda: int8(x)}, rounds,
                                warmup=3, clock='thread' if threads == 1 else 'wall',
                                rotate=True)
            return {n: statistics.median(t) * 1e3 for n, t in times.items()}
    finally:
        inductor_config.freezing = previous


def _onnx_route_lines(size, calib, work, rounds, threads, seed) -> List[str]:
    """The onnxruntime table of :func:`run_int8_routes` at one size."""
    from ghostnetv2_mm.deployment import BackboneExport, export_onnx, prepare_for_export
    from ghostnetv2_mm.models import GhostNetV2
    from .onnx_profile import export_timm_peer, time_interleaved
    torch.manual_seed(seed)
    files, lines = {}, []
    src = os.path.join(work, f'ghostnetv2_{size}.onnx')
    export_onnx(BackboneExport(prepare_for_export(
        GhostNetV2('1.0x', out_indices=(10,)))).eval(), src, (size, size))
    files['GhostNetV2 (ours)'] = {'float32': src, **_ort_variants(src, calib, work, True)}
    for label, name in ROUTE_PEERS.items():
        src = export_timm_peer(name, os.path.join(work, f'{name}_{size}.onnx'),
                               size=(size, size))  # dynamic N, H, W as benchmarked
        files[label] = {'float32': src, **_ort_variants(src, calib, work, False)}
    flat = {f'{m}|{v}': p for m, d in files.items() for v, p in d.items()}
    log(f'timing {len(flat)} files at {size}')
    times = time_interleaved(flat, size=(size, size), rounds=rounds, warmup=3,
                             threads=threads, clock='thread')
    lines += [f'onnxruntime, {size}x{size}:', '',
              '| model | variant | ms (median) | speed vs its float32 |',
              '|---|---|---|---|']
    for model, variants in files.items():
        base = times[f'{model}|float32']
        for variant in variants:
            t = times[f'{model}|{variant}']
            ratio = statistics.median(b / a for a, b in zip(t, base))
            lines.append(f'| {model} | {variant} | {statistics.median(t):.2f} | '
                         f'{ratio:.2f}x |')
    lines.append('')
    return lines


def run_int8_routes(*, sizes=(224, 640), rounds: int = 20, threads: int = 1,
                    calib_images: int = 16, pt2e_sizes=(224,), onnx: bool = True,
                    seed: int = 0) -> str:
    """Time the INT8 routes against float32: this project's backbone (GhostNetV2-1.0x
    to the 960-channel conv, deploy form) and the timm peers, exported at each size.

    onnxruntime: every file of a size (float32 and each ``ROUTE_VARIANTS`` entry,
    all models) in one interleaved loop, ``threads`` intra-op threads, CPU time of
    the calling thread (load on the machine is left out), median of ``rounds``.
    PT2E (at ``pt2e_sizes``): our backbone eager, compiled fp32 and compiled INT8
    in a second interleaved loop (PyTorch's own threads = ``threads``).

    Args:
        sizes (sequence of int): Square input sizes.
        rounds (int): Interleaved rounds (after 3 warm-ups).
        threads (int): Threads of every timed run.
        calib_images (int): Digits training images (resized to the size) the
            quantisers calibrate on; ranges change the speed little.
        pt2e_sizes (sequence of int): Sizes at which the PT2E route is timed too
            (each ``torch.compile`` takes minutes); empty: none.
        onnx (bool): Time the onnxruntime files (False: PT2E only).
        seed (int): Seeds the random weights.
    """
    work = tempfile.mkdtemp(prefix='int8-routes-')
    train, _ = load_digits_splits()
    lines = [f'Backbones, batch 1, {threads} thread(s), random weights, calibrated on '
             f'{calib_images} digits images resized to the input size; onnxruntime: '
             f'median CPU time of the calling thread over {rounds} interleaved rounds; '
             'speed = float32 time / INT8 time of the same model, median over rounds.', '']
    for size in sizes:
        calib, _ = batches(train, size, calib_images, batch=4)
        if onnx:
            lines += _onnx_route_lines(size, calib, work, rounds, threads, seed)
        if size in pt2e_sizes:
            t = _pt2e_times(size, calib, rounds, threads, seed)
            clock = 'CPU time of the calling thread' if threads == 1 else 'wall clock'
            lines += [f'PyTorch, our backbone, {size}x{size} (medians of the {clock}, '
                      f'{rounds} interleaved rounds):', '',
                      '| route | ms (median) | speed vs torch.compile fp32 |',
                      '|---|---|---|']
            for name, ms in t.items():
                lines.append(f'| {name} | {ms:.2f} | '
                             f'{t["torch.compile fp32"] / ms:.2f}x |')
            lines.append('')
    return '\n'.join(lines)


def conv_kind_breakdown(path: str, *, size: int = 224, runs: int = 20,
                        warmup: int = 5, threads: int = 1) -> Dict[str, float]:
    """Kernel time per run (ms, onnxruntime's profiler) of ``path``'s convolutions split
    into depthwise (group > 1) and dense, and of every other op type.

    onnxruntime renames the nodes it fuses (``FusedConv``, ``QLinearConv``, NCHWc
    ``Conv``) but keeps the module path of the exporter's names
    (``/backbone/layer1/layer1.0/ghost1/cheap_operation/...``), so each profiled conv
    is matched to the file's conv node with the same path (DequantizeLinear-fed
    weights included).

    Returns:
        dict: ``'depthwise conv'``, ``'dense conv'`` and one entry per other op type
        (ms per run), largest first, and ``'total'``.
    """
    import onnx
    from .onnx_profile import kernel_times, random_input
    graph = onnx.load(path, load_external_data=False).graph
    kind = {}
    for node in graph.node:
        if node.op_type in ('Conv', 'QLinearConv', 'ConvInteger'):
            group = next((a.i for a in node.attribute if a.name == 'group'), 1)
            kind[node.name.rsplit('/', 1)[0] + '/'] = ('depthwise conv' if group > 1
                                                       else 'dense conv')
    totals: Dict[str, float] = {}
    for name, op, dur in kernel_times(path, random_input((size, size)), runs=runs,
                                      warmup=warmup, threads=threads):
        if 'Conv' in op:
            # (the stem etc.: one conv per path)
            op = kind.get(name.rsplit('/', 1)[0] + '/', 'dense conv')
        totals[op] = totals.get(op, 0.0) + dur / runs / 1e3
    out = dict(sorted(totals.items(), key=lambda kv: -kv[1]))
    out['total'] = sum(totals.values())
    return out


def detector_int8_table(config: str, onnx_files: List[str], *, threads: int = 1,
                        cfg_options=None) -> str:
    """Box AP of exported detectors (float32 and INT8 files of one model) on the
    config's test set, each scored by the config's own evaluator through
    :func:`ghostnetv2_mm.deployment.evaluation.evaluate_detections` with
    :class:`~ghostnetv2_mm.deployment.runtime.OnnxPredictor` (the code path of
    tools/deployment/onnx_infer.py). Returns a Markdown table; changes are against
    the first file (give the float32 file first).

    Args:
        config (str): The detection config the files were exported from.
        onnx_files (list of str): The files; every one must record this config's
            normalisation, input conventions and classes (refused otherwise).
        threads (int): onnxruntime intra-op threads.
        cfg_options (dict, optional): Overrides merged into the config (e.g. the
            test set's ``data_root``).
    """
    from ghostnetv2_mm.deployment.evaluation import evaluate_detections
    from ghostnetv2_mm.deployment.runtime import OnnxPredictor, metadata_mismatches
    from ghostnetv2_mm.errors import UserError
    from ghostnetv2_mm.utils.toolkit import load_config
    rows = []
    for path in onnx_files:
        cfg = load_config(config, cfg_options)  # a fresh config: nothing carries over
        mismatches, _ = metadata_mismatches(cfg, path, os.path.basename(config))
        if mismatches:
            raise UserError(f'{path} was not exported with config {config}: '
                            + '; '.join(mismatches))
        predictor = OnnxPredictor(cfg, path, threads)
        if predictor.task != 'detection':
            raise UserError(f'{path} is no detector (outputs of a {predictor.task} model)')
        log(f'scoring {path} on the test set of {config}')
        metrics = evaluate_detections(cfg, predictor)
        keys = sorted(k for k in metrics if k.endswith('_mAP'))  # bbox (and segm)
        rows.append((path, {k: (metrics[k], metrics[k + '_50']) for k in keys}))
    # CocoMetric reports nothing for a file without a single detection: '-' there
    kinds = sorted({k for _, values in rows for k in values})
    head = ['file']
    for k in kinds:
        name = k.split('/')[-1].replace('_mAP', '')
        head += [f'{name} AP', f'{name} AP50', f'{name} AP change']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for path, values in rows:
        cells = [os.path.basename(path)]
        for k in kinds:
            if k not in values:
                cells += ['-', '-', '-']
                continue
            ap, ap50 = values[k]
            base = rows[0][1].get(k)
            cells += [f'{ap:.3f}', f'{ap50:.3f}',
                      f'{ap - base[0]:+.3f}' if base else '-']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
