#!/usr/bin/env python
"""Run a detection, instance-segmentation or semantic-segmentation model on images
and save them with the predictions drawn (classes, scores, masks), using mmdet's and
mmseg's own visualizers.

    python tools/demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT --out-dir work_dirs/vis
    python tools/demo.py data/toy_shapes/images/validation \\
        configs/demo/mask-rcnn_ghostnetv2_toyshapes.py work_dirs/demo/mask-rcnn/iter_3000.pth
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_images(path: str, limit: int):
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'image or folder {path!r} not found')
    files = sorted(osp.join(path, f) for f in os.listdir(path)
                   if f.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {path!r}')
    return files[:limit] if limit > 0 else files


def build(cfg, checkpoint: str, device: str):
    """The model with its weights, a predict function and the toolkit's visualizer."""
    from ghostnetv2_mm.utils.toolkit import setup_toolkit
    scope = setup_toolkit(cfg)
    cfg.model.backbone.init_cfg = None  # the checkpoint holds every weight
    if scope == 'mmdet':
        from mmdet.apis import inference_detector, init_detector
        from mmdet.registry import VISUALIZERS
        model = init_detector(cfg, checkpoint, device=device)
        predict = inference_detector
    elif scope == 'mmseg':
        from mmseg.apis import inference_model, init_model
        from mmseg.registry import VISUALIZERS
        model = init_model(cfg, checkpoint, device=device)
        predict = inference_model
    else:
        raise ValueError(f'tools/demo.py draws mmdet and mmseg predictions; this config is '
                         f'{scope} (use tools/test.py for classifiers)')
    visualizer = VISUALIZERS.build(cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    return scope, model, predict, visualizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('inputs', help='an image or a folder of images')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out-dir', default='work_dirs/vis')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detections below this score are not drawn')
    parser.add_argument('--limit', type=int, default=0, help='at most N images (0: all)')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if not 0 <= args.score_thr <= 1:
        parser.error(f'--score-thr {args.score_thr}: allowed: a score in [0, 1]')
    for path, what in ((args.config, 'config'), (args.checkpoint, 'checkpoint')):
        if not osp.isfile(path):
            parser.error(f'{what} {path!r} not found')
    images = list_images(args.inputs, args.limit)

    import mmcv
    from mmengine.config import Config
    from mmengine.utils import ProgressBar
    scope, model, predict, visualizer = build(Config.fromfile(args.config),
                                              args.checkpoint, args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    progress = ProgressBar(len(images))
    for path in images:
        result = predict(model, path)
        image = mmcv.imread(path, channel_order='rgb')
        out_file = osp.join(args.out_dir, osp.splitext(osp.basename(path))[0] + '.png')
        extra = dict(pred_score_thr=args.score_thr) if scope == 'mmdet' else {}
        visualizer.add_datasample(osp.basename(path), image, data_sample=result,
                                  draw_gt=False, show=False, out_file=out_file, **extra)
        progress.update()
    print(f'\nsaved {len(images)} picture(s) with predictions to {args.out_dir}')


if __name__ == '__main__':
    main()
