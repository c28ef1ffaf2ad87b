#!/usr/bin/env python
"""Static INT8 post-training quantisation of an exported ONNX file (onnxruntime, QDQ).

    python tools/deployment/quantize_onnx.py work_dirs/cls.onnx work_dirs/cls-int8.onnx \\
        --calib-dir data/imagenet/val --num-images 300 --size 224

Calibration images are resized to ``--size`` (bilinear, whole image) and normalised
with ``--mean``/``--std`` (default: ImageNet, RGB order) - use what the model was
trained with. Convolutions and linear layers are quantised (weights int8 per channel,
activations uint8 per tensor, min/max ranges); the DFC and SE gates, resizes, adds and
pooling stay float32 (``ghostnetv2_mm.deployment.quantize``). The tool prints which
node types run in INT8 and which stay float, and the largest output difference
against the float file on the first calibration batch.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='float32 .onnx file')
    parser.add_argument('dst', help='INT8 .onnx file to write')
    parser.add_argument('--calib-dir', required=True,
                        help='folder of calibration images (searched recursively)')
    parser.add_argument('--num-images', type=int, default=300)
    parser.add_argument('--batch', type=int, default=10)
    parser.add_argument('--size', type=int, nargs='+', default=[224],
                        help='input size, H or H W (default 224)')
    parser.add_argument('--mean', type=float, nargs=3, default=[123.675, 116.28, 103.53])
    parser.add_argument('--std', type=float, nargs=3, default=[58.395, 57.12, 57.375])
    parser.add_argument('--exclude-nodes', nargs='*', default=[],
                        help='node names to keep in float')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.src):
        parser.error(f'src {args.src!r}: file not found')
    if not os.path.isdir(args.calib_dir):
        parser.error(f'--calib-dir {args.calib_dir!r}: not a folder')
    if args.num_images < 1 or args.batch < 1:
        parser.error(f'--num-images and --batch must be >= 1 (got {args.num_images}, '
                     f'{args.batch})')
    if len(args.size) not in (1, 2):
        parser.error(f'--size takes H or H W, got {args.size}')
    return args


def calibration_batches(folder, num, batch, size, mean, std):
    """(N, 3, H, W) float32 batches of the first ``num`` images under ``folder``."""
    import numpy as np
    from PIL import Image
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(IMAGE_EXTS))[:num]
    if not paths:
        raise SystemExit(f'--calib-dir {folder!r}: no images ({", ".join(IMAGE_EXTS)})')
    h, w = size if len(size) == 2 else size * 2
    mean, std = np.float32(mean).reshape(3, 1, 1), np.float32(std).reshape(3, 1, 1)
    batches = []
    for start in range(0, len(paths), batch):
        images = [np.asarray(Image.open(p).convert('RGB').resize((w, h), Image.BILINEAR),
                             dtype=np.float32).transpose(2, 0, 1)
                  for p in paths[start:start + batch]]
        batches.append(((np.stack(images) - mean) / std).astype(np.float32))
    return batches


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np

    from ghostnetv2_mm.deployment import (onnx_session, quantize_int8,
                                          quantized_node_counts, run_onnx)
    batches = calibration_batches(args.calib_dir, args.num_images, args.batch, args.size,
                                  args.mean, args.std)
    quantize_int8(args.src, args.dst, batches, exclude_nodes=args.exclude_nodes)
    counts = quantized_node_counts(args.dst)
    print(f'wrote {args.dst} (calibrated on {sum(len(b) for b in batches)} images)')
    for kind in ('int8', 'float'):
        print(f'  {kind:5}: ' + ', '.join(f'{k} {v}' for k, v in sorted(counts[kind].items())))
    ref = run_onnx(onnx_session(args.src), batches[0])
    got = run_onnx(onnx_session(args.dst), batches[0])
    for name, r, g in zip((o.name for o in onnx_session(args.src).get_outputs()), ref, got):
        print(f'  output {name}: max abs diff {float(np.abs(r - g).max()):.3g} '
              f'(float range {float(r.min()):.3g} .. {float(r.max()):.3g})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
