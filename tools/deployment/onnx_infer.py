#!/usr/bin/env python
"""Run an exported detector or segmentor on an image with onnxruntime and draw it.

    python tools/deployment/onnx_infer.py configs/retinanet_ghostnetv2_coco.py \\
        work_dirs/retinanet.onnx demo.jpg --out-file work_dirs/demo_onnx.jpg

The config's test pipeline (resize) and data preprocessor (normalise, pad) prepare the
input exactly as for the PyTorch model; boxes are mapped back to the original image,
Mask R-CNN's masks pasted into them there (mmdet's pasting and mask_thr_binary) and
label maps resized to it (nearest); the toolkit's visualiser (DetLocalVisualizer /
SegLocalVisualizer) draws the result, with the dataset's class names. Needs
onnxruntime, not mmdeploy.

What the file records it was made from (its ONNX metadata: normalisation, input
conventions, class names) must match the config, or the tool refuses to run: another
normalisation would give wrong results without a sign. ``--out-file`` must be an
image name other than the input's; it is written atomically.
"""
import sys

from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, existing_file,
                                     float_in, positive_int, tool_main)

DRAWING_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', type=existing_file,
                        help='the config the file was exported from')
    parser.add_argument('onnx', type=existing_file, help='the exported .onnx file')
    parser.add_argument('image', type=existing_file, help='image file')
    parser.add_argument('--out-file', default='work_dirs/onnx_infer.jpg',
                        help='where to write the drawing (an image file name)')
    parser.add_argument('--score-thr', type=float_in(0, 1), default=0.3,
                        help='detections drawn from this score on (detectors)')
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='onnxruntime intra-op threads (default: all cores)')
    args = parser.parse_args(argv)
    check_output(args.out_file, '--out-file', suffixes=DRAWING_SUFFIXES,
                 inputs=[('config', args.config), ('onnx', args.onnx),
                         ('image', args.image)])
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    import os

    from mmengine.config import Config

    from ghostnetv2_mm.deployment.runtime import OnnxPredictor, metadata_mismatches
    from ghostnetv2_mm.utils.toolkit import dataset_meta
    cfg = Config.fromfile(args.config)
    mismatches, notes = metadata_mismatches(cfg, args.onnx, os.path.basename(args.config))
    if mismatches:
        raise UserError(f'{args.onnx} was not exported with config {args.config}: '
                        + '; '.join(mismatches) + ' (results would be wrong; give the '
                        'config it was exported from)')
    for note in notes:
        print(f'note: {note}', file=sys.stderr)
    predictor = OnnxPredictor(cfg, args.onnx, args.threads)
    classes = dataset_meta(cfg).get('classes') or ()

    def name(label):
        return classes[label] if 0 <= label < len(classes) else f'class {label}'

    sample = predictor(args.image)
    if predictor.task == 'detection':
        inst = sample.pred_instances
        shown = int((inst.scores >= args.score_thr).sum())
        print(f'{len(inst.scores)} detections, {shown} with score >= {args.score_thr}')
        for i in range(shown):
            mask = (f' mask {int(inst.masks[i].sum())} px' if 'masks' in inst else '')
            print(f'  {name(int(inst.labels[i]))} score {float(inst.scores[i]):.3f} box '
                  + ' '.join(f'{float(v):.1f}' for v in inst.bboxes[i]) + mask)
    else:
        import torch
        labels, counts = torch.unique(sample.pred_sem_seg.data, return_counts=True)
        total = int(counts.sum())
        print('pixels per class: ' + ', '.join(
            f'{name(int(c))}: {100 * int(n) / total:.1f}%' for c, n in zip(labels, counts)))
    predictor.draw(args.image, sample, args.out_file, args.score_thr)
    print(f'wrote {args.out_file}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
