#!/usr/bin/env python
"""Run an ncnn export of a detector or segmentor on images and draw the results.

    python tools/deployment/ncnn_infer.py configs/retinanet_ghostnetv2_coco.py \\
        work_dirs/retinanet demo.jpg --out-file work_dirs/demo_ncnn.jpg
    python tools/deployment/ncnn_infer.py CONFIG PREFIX a.jpg b.jpg --out-dir work_dirs/vis

PREFIX is what export_ncnn.py wrote: PREFIX.param, PREFIX.bin and PREFIX.json. The
config's test pipeline (resize) and data preprocessor (normalise, pad) prepare each
image exactly as for the PyTorch model, padded further to the file's fixed input size
(an image prepared larger is refused). ncnn (fp32, CPU) runs the file; detectors'
head outputs are decoded and NMS-ed by the project's post-processing in Python, boxes
mapped back to the original image; segmentors' class maps are cropped to the image and
resized to it (nearest). The toolkit's visualiser (DetLocalVisualizer /
SegLocalVisualizer) draws the result with the dataset's class names.

What PREFIX.json records the files were made from (normalisation, input conventions,
class names) must match the config, and PREFIX.param / .bin must be the files it was
written with, or the tool refuses to run: another normalisation would give wrong
results without a sign. With one image ``--out-file`` names the drawing; with
``--out-dir`` (the default: work_dirs/ncnn_infer) each image is drawn as
OUT_DIR/<image name>.png. Drawings are written atomically and never replace an input.
"""
import os
import sys

from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, existing_file,
                                     float_in, positive_int, tool_main)

DRAWING_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def drawing_path(out_dir: str, image: str) -> str:
    return os.path.join(out_dir, os.path.splitext(os.path.basename(image))[0] + '.png')


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', type=existing_file,
                        help='the config the files were exported from')
    parser.add_argument('prefix', metavar='PREFIX',
                        help='the export: PREFIX.param, PREFIX.bin, PREFIX.json')
    parser.add_argument('images', nargs='+', type=existing_file, metavar='IMAGE',
                        help='image files')
    where = parser.add_mutually_exclusive_group()
    where.add_argument('--out-file', help='where to draw the one IMAGE (an image file name)')
    where.add_argument('--out-dir', help='draw each IMAGE as OUT_DIR/<image name>.png '
                       '(default: work_dirs/ncnn_infer)')
    parser.add_argument('--score-thr', type=float_in(0, 1), default=0.3,
                        help='detections drawn from this score on (detectors)')
    parser.add_argument('--threads', type=positive_int, default=1,
                        help='ncnn threads (default 1)')
    args = parser.parse_args(argv)
    files = {ext: f'{args.prefix}.{ext}' for ext in ('param', 'bin', 'json')}
    inputs = ([('config', args.config)] + [(f'PREFIX.{e}', p) for e, p in files.items()]
              + [('IMAGE', image) for image in args.images])
    if args.out_file:
        if len(args.images) > 1:
            parser.error(f'--out-file {args.out_file!r}: {len(args.images)} images given; '
                         '--out-file draws one, --out-dir draws each')
        check_output(args.out_file, '--out-file', suffixes=DRAWING_SUFFIXES, inputs=inputs)
        args.drawings = [args.out_file]
    else:
        args.out_dir = args.out_dir or os.path.join('work_dirs', 'ncnn_infer')
        check_output(args.out_dir, '--out-dir', is_dir=True)
        args.drawings = [drawing_path(args.out_dir, image) for image in args.images]
        if len(set(args.drawings)) < len(args.drawings):
            parser.error('--out-dir: two IMAGEs have the same name, so their drawings would '
                         'overwrite each other; use separate runs')
        for path in args.drawings:
            check_output(path, '--out-dir', inputs=inputs)
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    from ghostnetv2_mm.deployment import ncnn as nc
    nc.require('ncnn')
    from mmengine.config import Config

    from ghostnetv2_mm.utils.toolkit import dataset_meta
    cfg = Config.fromfile(args.config)
    content = nc.read_sidecar(args.prefix)
    mismatches, notes = nc.sidecar_mismatches(content, cfg, os.path.basename(args.config))
    if mismatches:
        raise UserError(f'{args.prefix}.json: the files were not exported with config '
                        f'{args.config}: ' + '; '.join(mismatches) + ' (results would be '
                        'wrong; give the config they were exported from)')
    for note in notes:
        print(f'note: {note}', file=sys.stderr)
    predictor = nc.NcnnPredictor(cfg, args.prefix, args.threads)
    classes = dataset_meta(cfg).get('classes') or ()

    def name(label):
        return classes[label] if 0 <= label < len(classes) else f'class {label}'

    for image, drawing in zip(args.images, args.drawings):
        sample = predictor(image)
        print(f'{image}:')
        if predictor.padded:
            h, w = predictor.padded
            print(f'  note: prepared at {h}x{w}, padded to the file\'s '
                  f'{predictor.size[0]}x{predictor.size[1]}', file=sys.stderr)
        if predictor.task == 'detection':
            inst = sample.pred_instances
            shown = int((inst.scores >= args.score_thr).sum())
            print(f'  {len(inst.scores)} detections, {shown} with score >= {args.score_thr}')
            for i in range(shown):
                print(f'  {name(int(inst.labels[i]))} score {float(inst.scores[i]):.3f} box '
                      + ' '.join(f'{float(v):.1f}' for v in inst.bboxes[i]))
        else:
            import torch
            labels, counts = torch.unique(sample.pred_sem_seg.data, return_counts=True)
            total = int(counts.sum())
            print('  pixels per class: ' + ', '.join(
                f'{name(int(c))}: {100 * int(n) / total:.1f}%'
                for c, n in zip(labels, counts)))
        predictor.draw(image, sample, drawing, args.score_thr)
        print(f'  wrote {drawing}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
