#!/usr/bin/env python
"""INT8 against float32 with onnxruntime: accuracy on a model trained here, and speed.

    flock /tmp/ghostnetv2-cpu.lock python tools/analysis/int8_study.py --threads 1 \\
        --out docs/int8_study.md

1. Accuracy: GhostNetV2-1.0x trained on the scikit-learn digits with a protocol and
   the code of tools/transfer_benchmark.py (``--protocol finetune``: random init,
   ``--epochs`` epochs at 32x32; ``linear``: the backbone as initialised and a
   logistic-regression head fitted on its pooled features, folded into the model),
   switched to deploy mode and exported (a 32x32 input: the last maps are 1 pixel),
   then quantised with ``ghostnetv2_mm.deployment.quantize_int8`` calibrated on the
   first ``--calib-images`` training images; every variant is scored on the whole
   test split (450 images) with onnxruntime.
2. Speed: the same variants at 32x32, and the ImageNet classifier (1.0x, 1000
   classes) and the backbone (to the 960-channel conv) at 224x224, float32 against
   INT8 (calibrated on digits images resized to 224: ranges only matter for accuracy),
   batch 1, ``--threads`` threads, ``--repeats`` interleaved rounds, median.

Variants: ``int8``: every conv and linear layer (weights per channel); ``int8 per-tensor``:
one weight scale per tensor; ``int8, depthwise float``: the depthwise convs (group > 1)
kept in float32.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from types import SimpleNamespace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tools'))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--protocol', choices=('finetune', 'linear'), default='finetune',
                        help='how the digits model is trained (transfer_benchmark.py\'s '
                        'protocols; linear: backbone as initialised, fitted linear head)')
    parser.add_argument('--epochs', type=int, default=10, help='fine-tuning epochs')
    parser.add_argument('--calib-images', type=int, default=300)
    parser.add_argument('--repeats', type=int, default=30)
    parser.add_argument('--threads', type=int, default=1,
                        help='threads of the timed runs (fine-tuning uses all cores)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the Markdown tables here')
    return parser.parse_args(argv)


def fit_linear_head(model, train, test, tb):
    """The linear-probe protocol of transfer_benchmark.py (backbone as initialised,
    standardised pooled features, multinomial logistic regression), folded into the
    model's linear layer so that the network itself outputs the fitted logits."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    model.eval()
    kw = dict(img_size=32, augment=False, flip=False, batch_size=128, shuffle=False,
              seed=0, workers=0)
    x_train, y_train = tb.extract(model, tb.make_loader(train, **kw), 'features')
    x_test, y_test = tb.extract(model, tb.make_loader(test, **kw), 'features')
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=1.0, max_iter=1000, random_state=0)
    clf.fit(scaler.transform(x_train), y_train)
    weight = clf.coef_ / scaler.scale_
    bias = clf.intercept_ - weight @ scaler.mean_
    with torch.no_grad():
        model.fc.weight.copy_(torch.from_numpy(weight).float())
        model.fc.bias.copy_(torch.from_numpy(bias).float())
    return float((clf.predict(scaler.transform(x_test)) == y_test).mean())


def depthwise_nodes(path):
    import onnx
    graph = onnx.load(path).graph
    return [n.name for n in graph.node if n.op_type == 'Conv'
            and any(a.name == 'group' and a.i > 1 for a in n.attribute)]


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    import transfer_benchmark as tb
    from ghostnetv2_mm.deployment import (BackboneExport, ClassifierExport, export_onnx,
                                          onnx_session, quantize_int8, run_onnx,
                                          switch_to_deploy)
    from ghostnetv2_mm.models import GhostNetV2, build_classifier
    work = tempfile.mkdtemp(prefix='int8-study-')
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    # ---- 1. the digits model
    train, test = tb.load_digits_splits()
    opts = SimpleNamespace(img_size=32, batch_size=64, epochs=args.epochs, lr=0.05,
                           seed=args.seed, workers=0, device='cpu')
    model, _ = tb.build_model('ghostnetv2_1.0x', 10, 32, args.seed, {})
    if args.protocol == 'finetune':
        log(f'fine-tuning on digits, {args.epochs} epochs')
        torch_acc = tb.run_finetune(model, train, test, opts, flip=False)  # (all cores)
    else:
        torch_acc = fit_linear_head(model, train, test, tb)
    torch.set_num_threads(args.threads)
    model.eval()
    model.backbone.switch_to_deploy(channels_last=False)

    class Logits(torch.nn.Module):
        output_names = ('logits',)

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)

    fp32 = os.path.join(work, 'digits.onnx')
    export_onnx(Logits(model).eval(), fp32, (32, 32))

    def batches(source, size, num=None, batch=50):
        loader = tb.make_loader(source, size, False, False, batch, False, 0, 0)
        out, labels, seen = [], [], 0
        for x, y in loader:
            out.append(x.numpy())
            labels.append(y.numpy())
            seen += len(x)
            if num is not None and seen >= num:
                break
        return out, labels

    calib, _ = batches(train, 32, args.calib_images)
    test_x, test_y = batches(test, 32)
    variants = {'float32': fp32}
    for name, kwargs in [('int8', {}), ('int8 per-tensor', dict(per_channel=False)),
                         ('int8, depthwise float', dict(exclude_nodes=depthwise_nodes(fp32)))]:
        path = os.path.join(work, name.replace(' ', '_').replace(',', '') + '.onnx')
        log(f'quantising: {name}')
        quantize_int8(fp32, path, calib, **kwargs)
        variants[name] = path
    sessions = {n: onnx_session(p, args.threads) for n, p in variants.items()}
    accuracy = {}
    for n, s in sessions.items():
        correct = sum(int((run_onnx(s, x)[0].argmax(1) == y).sum())
                      for x, y in zip(test_x, test_y))
        accuracy[n] = correct / sum(len(y) for y in test_y)

    def interleaved(runs, x):
        for r in runs.values():
            for _ in range(3):
                r(x)
        times = {n: [] for n in runs}
        for _ in range(args.repeats):
            for n, r in runs.items():
                start = time.perf_counter()
                r(x)
                times[n].append(time.perf_counter() - start)
        return {n: statistics.median(t) * 1e3 for n, t in times.items()}

    x32 = test_x[0][:1]
    small = interleaved({n: (lambda x, s=s: run_onnx(s, x)) for n, s in sessions.items()},
                        x32)

    # ---- 2. ImageNet-sized classifier and backbone at 224
    calib224, _ = batches(train, 224, args.calib_images, batch=20)
    torch.manual_seed(args.seed)
    big = {}
    for label, module in [
            ('classifier 1.0x (1000 classes)',
             ClassifierExport(switch_to_deploy(build_classifier('1.0x')))),
            ('backbone 1.0x', BackboneExport(switch_to_deploy(
                GhostNetV2('1.0x', out_indices=(10,)))))]:
        src = os.path.join(work, f'{label.split()[0]}224.onnx')
        dst = src.replace('.onnx', '-int8.onnx')
        export_onnx(module.eval(), src, (224, 224))
        log(f'quantising {label} at 224')
        quantize_int8(src, dst, calib224)
        s32, s8 = onnx_session(src, args.threads), onnx_session(dst, args.threads)
        x = calib224[0][:1]
        big[label] = interleaved({'float32': lambda x: run_onnx(s32, x),
                                  'int8': lambda x: run_onnx(s8, x)}, x)

    how = (f'fine-tuned here, {args.epochs} epochs' if args.protocol == 'finetune' else
           'random-init backbone + logistic-regression head fitted here (linear probe)')
    lines = [f'Digits (GhostNetV2-1.0x {how}, 32x32 inputs, test '
             f'split of {sum(len(y) for y in test_y)} images; PyTorch accuracy '
             f'{100 * torch_acc:.2f}%), onnxruntime, batch 1, {args.threads} thread(s), '
             f'{args.repeats} interleaved rounds:', '',
             '| variant | top-1 (%) | change (points) | latency ms (median) | speed vs float32 |',
             '|---|---|---|---|---|']
    for n in variants:
        lines.append(f'| {n} | {100 * accuracy[n]:.2f} | '
                     f'{100 * (accuracy[n] - accuracy["float32"]):+.2f} | {small[n]:.3f} | '
                     f'{small["float32"] / small[n]:.2f}x |')
    lines += ['', f'224x224, random weights (speed only), calibrated on '
              f'{args.calib_images} digits images resized to 224:', '',
              '| model | float32 ms | int8 ms | speed vs float32 |', '|---|---|---|---|']
    for label, t in big.items():
        lines.append(f'| {label} | {t["float32"]:.2f} | {t["int8"]:.2f} | '
                     f'{t["float32"] / t["int8"]:.2f}x |')
    text = '\n'.join(lines) + '\n'
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
