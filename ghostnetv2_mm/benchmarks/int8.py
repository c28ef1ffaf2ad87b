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
    for name, kwargs in [('int8', {}), ('int8 per-tensor', dict(per_channel=False)),
                         ('int8, depthwise float', dict(exclude_nodes=depthwise_nodes(fp32)))]:
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
    lines += ['', f'224x224, random weights (speed only), calibrated on '
              f'{calib_images} digits images resized to 224:', '',
              '| model | float32 ms | int8 ms | speed vs float32 |', '|---|---|---|---|']
    for label, t in big.items():
        lines.append(f'| {label} | {t["float32"]:.2f} | {t["int8"]:.2f} | '
                     f'{t["float32"] / t["int8"]:.2f}x |')
    return '\n'.join(lines) + '\n'
