#!/usr/bin/env python
"""Run a detection, instance-segmentation or semantic-segmentation model on images
and save them with the predictions drawn (classes, scores, masks), using mmdet's and
mmseg's own visualizers.

    python tools/demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT --out-dir work_dirs/vis
    python tools/demo.py data/toy_shapes/images/validation \\
        configs/demo/mask-rcnn_ghostnetv2_toyshapes.py work_dirs/demo/mask-rcnn/iter_3000.pth

The checkpoint is loaded strictly, as by tools/test.py: a file that does not fit the
config's model is refused, nothing is drawn. Class names come from the checkpoint's
``meta.dataset_meta`` when it has one, else from the config's dataset. A picture is
written as ``OUT_DIR/<image name>.png`` (atomically; ``<image name>.<ext>.png`` for
images whose names differ only in the extension); one that would replace an input
image, a device or FIFO, or another picture is refused before any work.
"""
import os
import os.path as osp
import sys

from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, check_outputs,
                                     existing_file, file_or_url, float_in, non_negative_int,
                                     tool_main)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_images(path: str, limit: int):
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise UserError(f'inputs {path!r}: no such image or folder', 2)
    files = sorted(osp.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise UserError(f'inputs {path!r}: no images ({", ".join(IMAGE_SUFFIXES)}) in it', 2)
    return files[:limit] if limit > 0 else files


def out_files(out_dir: str, images) -> dict:
    """image -> its picture: ``OUT_DIR/<name without extension>.png``; images whose
    names differ only in the extension (``cat.jpg``, ``cat.bmp``) keep it
    (``cat.jpg.png``, ``cat.bmp.png``), so that no picture replaces another."""
    stems = [osp.splitext(osp.basename(i))[0] for i in images]
    return {image: osp.join(out_dir, (stem if stems.count(stem) == 1
                                      else osp.basename(image)) + '.png')
            for image, stem in zip(images, stems)}


def build(cfg, checkpoint: str, device: str):
    """The model with its weights (strictly), a predict function and the toolkit's
    visualizer with the class names."""
    from ghostnetv2_mm.checkpoint import load_model_weights, read_checkpoint
    from ghostnetv2_mm.utils.toolkit import dataset_meta, setup_toolkit
    scope = setup_toolkit(cfg)
    cfg.model.backbone.init_cfg = None  # the checkpoint holds every weight
    if scope == 'mmdet':
        from mmdet.apis import inference_detector as predict
        from mmdet.apis import init_detector as init
        from mmdet.registry import VISUALIZERS
    elif scope == 'mmseg':
        from mmseg.apis import inference_model as predict
        from mmseg.apis import init_model as init
        from mmseg.registry import VISUALIZERS
    else:
        raise UserError(f'tools/demo.py draws mmdet and mmseg predictions; this config is '
                        f'{scope} (use tools/test.py for classifiers)')
    loaded = read_checkpoint(checkpoint)
    # the toolkits' init loads non-strictly (a warning for what does not fit): build
    # the model without weights, then load them as tools/test.py does
    model = init(cfg, None, device='cpu')
    load_model_weights(model, loaded, logger='silent')
    model.to(device)
    meta = loaded.get('meta') if isinstance(loaded, dict) else None
    model.dataset_meta = (meta or {}).get('dataset_meta') or dataset_meta(cfg)
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    return scope, model, predict, visualizer


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', help='an image or a folder of images')
    parser.add_argument('config', type=existing_file)
    parser.add_argument('checkpoint', type=file_or_url)
    parser.add_argument('--out-dir', default='work_dirs/vis')
    parser.add_argument('--score-thr', type=float_in(0, 1), default=0.3,
                        help='detections below this score are not drawn')
    parser.add_argument('--limit', type=non_negative_int, default=0,
                        help='at most N images (0: all)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries')
    args = parser.parse_args(argv)
    args.images = list_images(args.inputs, args.limit)
    check_output(args.out_dir, '--out-dir', is_dir=True)
    args.pictures = out_files(args.out_dir, args.images)
    # every picture: not an input, not a device, not another picture
    check_outputs([('--out-dir', p) for p in args.pictures.values()],
                  [('inputs', i) for i in args.images]
                  + [('config', args.config), ('checkpoint', args.checkpoint)])
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    import mmcv
    from mmengine.utils import ProgressBar

    from ghostnetv2_mm.deployment.runtime import ImagePreparer, drawable
    from ghostnetv2_mm.utils.fileio import atomic_output
    from ghostnetv2_mm.utils.toolkit import load_config
    cfg = load_config(args.config, args.cfg_options)
    prepare = ImagePreparer(cfg)
    for path in args.images:  # every image readable, before the model is built
        prepare(path)
    scope, model, predict, visualizer = build(cfg, args.checkpoint, args.device)
    progress = ProgressBar(len(args.images))
    written = 0
    for path in args.images:
        result = predict(model, path)
        image = mmcv.imread(path, channel_order='rgb')
        extra = dict(pred_score_thr=args.score_thr) if scope == 'mmdet' else {}
        with atomic_output(args.pictures[path]) as out:
            visualizer.add_datasample(osp.basename(path), image, data_sample=drawable(result),
                                      draw_gt=False, show=False, out_file=out.path, **extra)
        written += out.kept == out.target
        progress.update()
    print(f'\nsaved {written} picture(s) with predictions to {args.out_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
