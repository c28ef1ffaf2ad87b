#!/usr/bin/env python
"""Export GhostNetV2 to ONNX (dynamic batch, height and width) and check it.

    # backbone, multi-output (one ONNX output per out_index), deploy (BN-fused) graph
    python tools/deployment/export_onnx.py --arch 1.0x --out work_dirs/ghostnetv2_backbone.onnx

    # the ImageNet classifier (backbone + conv head + linear), with weights
    python tools/deployment/export_onnx.py --classifier \\
        --checkpoint ck_ghostnetv2_10.pth.tar --out work_dirs/ghostnetv2_cls.onnx

After writing the file the tool runs it with onnxruntime on every ``--check-sizes``
input and compares each output with the PyTorch model (max abs diff must be below
``--atol``, default 1e-4); it prints the differences and exits non-zero on a mismatch.

The exported graph is the deploy (BatchNorm-folded) network unless ``--no-deploy``;
both compute the eval-mode function. Inputs need H, W >= 64 for the traced graph to
hold at every size (below that the DFC pooling of the last stages changes kernel, see
``DFCAttention.downsample``); the check sizes default to a few such sizes.
Exporter: ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript, opset
18) first; if that fails, the TorchScript exporter (``dynamo=False``, which also does
opset 17). The exporter and the opset actually written are printed. (With the dynamo
exporter the nearest 2x resize of the DFC gate is exported as a Resize node, not as the
broadcast view the eager code uses, so that H and W stay symbolic.)
"""
import argparse
import os
import sys
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from ghostnetv2_mm.models import ARCH_WIDTHS, GhostNetV2, GhostNetV2ClsNeck  # noqa: E402


class Classifier(nn.Module):
    """Backbone (last layer), conv head (GhostNetV2ClsNeck), linear classifier."""

    def __init__(self, arch: str, num_classes: int = 1000):
        super().__init__()
        self.backbone = GhostNetV2(arch, out_indices=(10,))
        self.neck = GhostNetV2ClsNeck(self.backbone.layer_channels[-1])
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        return self.fc(self.neck(self.backbone(x))[0])


def load_weights(model: nn.Module, checkpoint: str, classifier: bool) -> None:
    from ghostnetv2_mm.checkpoint import (convert_reference_state_dict,
                                          is_reference_layout, load_backbone_weights,
                                          load_checkpoint_file, unwrap_state_dict)
    backbone = model.backbone if classifier else model
    load_backbone_weights(backbone, checkpoint)
    if not classifier:
        return
    state = unwrap_state_dict(load_checkpoint_file(checkpoint))
    if is_reference_layout(state):
        converted = convert_reference_state_dict(state)
        neck, head = converted.section('neck.'), converted.section('head.fc.')
    else:
        neck = {k[5:]: v for k, v in state.items() if k.startswith('neck.')}
        head = {k[8:]: v for k, v in state.items() if k.startswith('head.fc.')}
    if not neck or not head:
        raise SystemExit(f'{checkpoint}: no classifier head (neck./head.fc. or the '
                         'reference conv_head/classifier) found; export the backbone instead')
    model.neck.load_state_dict(neck, strict=True)
    model.fc.load_state_dict(head, strict=True)


def parse_size(text: str) -> Tuple[int, int]:
    parts = text.lower().split('x')
    parts = parts * 2 if len(parts) == 1 else parts
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f'bad size {text!r}: use H or HxW')
    return int(parts[0]), int(parts[1])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Export GhostNetV2 to ONNX and check it '
                                     'against onnxruntime.')
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--classifier', action='store_true',
                        help='export the ImageNet classifier (logits) instead of the backbone')
    parser.add_argument('--out-indices', type=int, nargs='+', default=[3, 5, 7, 9],
                        help='backbone outputs (one ONNX output each)')
    parser.add_argument('--checkpoint', help='weights (any layout the backbone loads); '
                        'default: random init with random BN statistics')
    parser.add_argument('--no-deploy', action='store_true',
                        help='export the training-layout graph (BatchNorm not folded)')
    parser.add_argument('--out', default='work_dirs/ghostnetv2.onnx')
    parser.add_argument('--opset', type=int, default=18,
                        help='ONNX opset (default 18: the lowest the dynamo exporter '
                        'implements; 17 works with --exporter torchscript)')
    parser.add_argument('--export-size', type=parse_size, default=(224, 224),
                        help='example input used for tracing (H or HxW)')
    parser.add_argument('--check-sizes', type=parse_size, nargs='+',
                        default=[(224, 224), (256, 320), (97, 131)])
    parser.add_argument('--check-batch', type=int, default=2)
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--exporter', choices=('auto', 'dynamo', 'torchscript'),
                        default='auto')
    return parser.parse_args(argv)


def _randomise_bn(model: nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)


def build(args) -> Tuple[nn.Module, List[str]]:
    torch.manual_seed(0)
    if args.classifier:
        model = Classifier(args.arch)
        names = ['logits']
    else:
        model = GhostNetV2(args.arch, out_indices=tuple(args.out_indices))
        names = [f'layer{i}' for i in model.out_indices]
    if args.checkpoint:
        load_weights(model, args.checkpoint, args.classifier)
    else:
        _randomise_bn(model)
    model.eval()
    if not args.no_deploy:
        backbone = model.backbone if args.classifier else model
        # ONNX has no memory layout: keep the graph free of layout conversions.
        backbone.switch_to_deploy(channels_last=False)
    return model, names


def export(model: nn.Module, names: Sequence[str], path: str, size: Tuple[int, int],
           opset: int, exporter: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    x = torch.randn(1, 3, *size)
    errors = []
    if exporter in ('auto', 'dynamo'):
        try:
            from torch.export import Dim
            # Dim.DYNAMIC, not named Dims: torch.export's constraint solver cannot
            # solve the chained ceil-divisions of the strided stages.
            dims = {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset,
                                        input_names=['input'], output_names=list(names),
                                        dynamic_shapes={'x': dims}, verbose=False)
            program.save(path)
            return 'dynamo'
        except Exception as exc:  # noqa: BLE001 - fall back, report below
            errors.append(f'dynamo exporter: {type(exc).__name__}: {str(exc)[:300]}')
            if exporter == 'dynamo':
                raise
    dynamic_axes = {'input': {0: 'batch', 2: 'height', 3: 'width'}}
    for n in names:
        dynamic_axes[n] = {0: 'batch', 2: 'h', 3: 'w'} if n != 'logits' else {0: 'batch'}
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset,
                      input_names=['input'], output_names=list(names),
                      dynamic_axes=dynamic_axes)
    for e in errors:
        print(f'note: {e}; used the TorchScript exporter instead')
    return 'torchscript'


def check(model: nn.Module, path: str, sizes, batch: int, atol: float) -> bool:
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    input_name = session.get_inputs()[0].name
    ok = True
    for h, w in sizes:
        x = torch.randn(batch, 3, h, w)
        with torch.no_grad():
            expected = model(x)
        expected = expected if isinstance(expected, (tuple, list)) else (expected,)
        got = session.run(None, {input_name: x.numpy()})
        diffs = []
        for e, g in zip(expected, got):
            e = e.contiguous().numpy()
            if e.shape != g.shape:
                diffs.append(float('inf'))
                continue
            diffs.append(float(np.abs(e - g).max()))
        worst = max(diffs)
        passed = worst < atol and len(got) == len(expected)
        ok &= passed
        shapes = ', '.join('x'.join(map(str, g.shape)) for g in got)
        print(f'  input {batch}x3x{h}x{w}: outputs [{shapes}] max abs diff '
              f'{worst:.2e} {"OK" if passed else "FAIL"} (atol {atol:g})')
    return ok


def main(argv=None) -> int:
    args = parse_args(argv)
    model, names = build(args)
    what = (f'GhostNetV2 {args.arch} {"classifier" if args.classifier else "backbone"}'
            f' ({"training layout" if args.no_deploy else "deploy, BN folded"})')
    used = export(model, names, args.out, args.export_size, args.opset, args.exporter)
    import onnx
    opset = max(o.version for o in onnx.load(args.out, load_external_data=False).opset_import
                if o.domain in ('', 'ai.onnx'))
    print(f'exported {what} to {args.out} (opset {opset}, {used} exporter, '
          f'dynamic batch/height/width, outputs: {", ".join(names)})')
    print('onnxruntime check:')
    ok = check(model, args.out, args.check_sizes, args.check_batch, args.atol)
    print('PASSED' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
