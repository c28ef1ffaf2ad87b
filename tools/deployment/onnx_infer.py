#!/usr/bin/env python
"""Run an exported detector or segmentor on an image with onnxruntime and draw it.

    python tools/deployment/onnx_infer.py configs/retinanet_ghostnetv2_coco.py \\
        work_dirs/retinanet.onnx demo.jpg --out-file work_dirs/demo_onnx.jpg

The config's test pipeline (resize) and data preprocessor (normalise, pad) prepare the
input exactly as for the PyTorch model; boxes are mapped back to the original image,
Mask R-CNN's masks pasted into them there (mmdet's pasting and mask_thr_binary) and
label maps resized to it (nearest); the toolkit's visualiser (DetLocalVisualizer /
SegLocalVisualizer) draws the result. Needs onnxruntime, not mmdeploy.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='the config the file was exported from')
    parser.add_argument('onnx', help='the exported .onnx file')
    parser.add_argument('image', help='image file')
    parser.add_argument('--out-file', default='work_dirs/onnx_infer.jpg',
                        help='where to write the drawing')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections drawn from this score on (detectors)')
    parser.add_argument('--threads', type=int, default=None,
                        help='onnxruntime intra-op threads (default: all cores)')
    args = parser.parse_args(argv)
    for name in ('onnx', 'image'):
        if not os.path.isfile(getattr(args, name)):
            parser.error(f'{name} {getattr(args, name)!r}: file not found')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmengine.config import Config

    from ghostnetv2_mm.deployment.runtime import OnnxPredictor
    predictor = OnnxPredictor(Config.fromfile(args.config), args.onnx, args.threads)
    sample = predictor(args.image)
    if predictor.task == 'detection':
        inst = sample.pred_instances
        shown = int((inst.scores >= args.score_thr).sum())
        print(f'{len(inst.scores)} detections, {shown} with score >= {args.score_thr}')
        for i in range(shown):
            mask = (f' mask {int(inst.masks[i].sum())} px' if 'masks' in inst else '')
            print(f'  label {int(inst.labels[i])} score {float(inst.scores[i]):.3f} box '
                  + ' '.join(f'{float(v):.1f}' for v in inst.bboxes[i]) + mask)
    else:
        import torch
        classes, counts = torch.unique(sample.pred_sem_seg.data, return_counts=True)
        total = int(counts.sum())
        print('pixels per class: ' + ', '.join(
            f'{int(c)}: {100 * int(n) / total:.1f}%' for c, n in zip(classes, counts)))
    predictor.draw(args.image, sample, args.out_file, args.score_thr)
    print(f'wrote {args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
