"""ToyShapes: a small, deterministic detection + segmentation dataset, made on the fly.

Each image shows a few non-overlapping filled shapes (circle, square, triangle) in
random colours on a textured background. The same scenes are written in two
standard formats, so the real toolkit datasets read them unchanged:

* COCO instances (mmdet ``CocoDataset``): boxes and polygon masks,
  ``annotations/instances_{training,validation}.json``;
* ADE20K semantic segmentation (mmseg ``ADE20KDataset`` layout):
  ``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``
  holding class indices, 0 = background.

Nothing is downloaded; the same seed gives the same files.
"""
import json
import math
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'square', 'triangle')
SPLITS = ('training', 'validation')


def _shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Vertices (N, 2) of a shape centred at (cx, cy) with circumradius r."""
    if kind == 'circle':
        n, angle = 32, 0.0
    elif kind == 'square':
        n = 4
    else:
        n = 3
    t = angle + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.integers(40, 215, size=3)
    noise = rng.normal(0, 18, size=(h // 8 + 1, w // 8 + 1, 3))
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def make_scene(rng: np.random.Generator, size: Tuple[int, int],
               max_objects: int, min_radius: int, max_radius: int):
    """One image, its instances [(class index, polygon)] and its semantic mask."""
    h, w = size
    image = _background(rng, h, w)
    semantic = np.zeros((h, w), np.uint8)
    occupied = np.zeros((h, w), bool)
    instances = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            label = int(rng.integers(len(CLASSES)))
            r = float(rng.uniform(min_radius, max_radius))
            cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
            poly = _shape_polygon(CLASSES[label], cx, cy, r, float(rng.uniform(0, math.pi)))
            mask = np.zeros((h, w), np.uint8)
            cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
            mask = mask.astype(bool)
            if mask.sum() >= 16 and not (mask & occupied).any():
                break
        else:
            continue
        colour = rng.integers(0, 256, size=3)
        # keep shapes visible against the background
        if np.abs(colour.astype(int) - image[mask].mean(0)).sum() < 120:
            colour = 255 - colour
        image[mask] = colour
        semantic[mask] = label + 1
        occupied |= mask
        instances.append((label, poly))
    return image, instances, semantic


def _coco_annotation(ann_id: int, image_id: int, label: int, poly: np.ndarray,
                     size: Tuple[int, int]) -> dict:
    h, w = size
    poly = poly.copy()
    poly[:, 0] = poly[:, 0].clip(0, w)
    poly[:, 1] = poly[:, 1].clip(0, h)
    x0, y0 = poly.min(0)
    x1, y1 = poly.max(0)
    area = float(cv2.contourArea(poly.astype(np.float32)))
    return dict(id=ann_id, image_id=image_id, category_id=label + 1, iscrowd=0,
                bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                area=area, segmentation=[[round(float(v), 2) for v in poly.reshape(-1)]])


def make_toy_shapes(root: str, num_train: int = 200, num_val: int = 50,
                    size: Tuple[int, int] = (128, 128), max_objects: int = 4,
                    radius: Tuple[int, int] = (10, 30), seed: int = 0,
                    overwrite: bool = False) -> Dict[str, str]:
    """Write ToyShapes under ``root`` and return the paths of its parts.

    Skips the work if ``root`` already holds a dataset made with the same arguments
    (unless ``overwrite``). Deterministic for a given ``seed``.
    """
    params = dict(num_train=num_train, num_val=num_val, size=list(size),
                  max_objects=max_objects, radius=list(radius), seed=seed)
    stamp = os.path.join(root, 'toy_shapes.json')
    paths = {split: os.path.join(root, 'annotations', f'instances_{split}.json')
             for split in SPLITS}
    if not overwrite and os.path.isfile(stamp):
        with open(stamp) as f:
            if json.load(f) == params:
                return paths
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(CLASSES)]
    for split, count in zip(SPLITS, (num_train, num_val)):
        image_dir = os.path.join(root, 'images', split)
        mask_dir = os.path.join(root, 'annotations', split)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(mask_dir, exist_ok=True)
        images: List[dict] = []
        annotations: List[dict] = []
        for i in range(count):
            image, instances, semantic = make_scene(rng, size, max_objects, *radius)
            name = f'{split}_{i:05d}'
            # quality 95: JPEG artefacts must not blur the shapes' edges much
            cv2.imwrite(os.path.join(image_dir, name + '.jpg'), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(os.path.join(mask_dir, name + '.png'), semantic)
            image_id = len(images) + 1
            images.append(dict(id=image_id, file_name=name + '.jpg',
                               height=size[0], width=size[1]))
            for label, poly in instances:
                annotations.append(_coco_annotation(len(annotations) + 1, image_id,
                                                    label, poly, size))
        with open(paths[split], 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
    with open(stamp, 'w') as f:
        json.dump(params, f)
    return paths


def main(argv: Optional[List[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('root', nargs='?', default='data/toy_shapes')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, nargs=2, default=(128, 128), metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true')
    args = parser.parse_args(argv)
    if args.num_train < 1 or args.num_val < 1:
        parser.error('--num-train and --num-val must be >= 1')
    make_toy_shapes(args.root, args.num_train, args.num_val, tuple(args.size),
                    seed=args.seed, overwrite=args.overwrite)
    print(f'ToyShapes written to {args.root} ({args.num_train} training, '
          f'{args.num_val} validation images)')


if __name__ == '__main__':
    main()
