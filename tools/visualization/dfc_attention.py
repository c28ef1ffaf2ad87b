#!/usr/bin/env python
"""Draw GhostNetV2's DFC attention gates as heat maps over an image.

    python tools/visualization/dfc_attention.py demo.jpg --out dfc.png
    python tools/visualization/dfc_attention.py demo.jpg --config CONFIG --checkpoint CKPT \\
        --blocks all --size 320

Every bottleneck with DFC attention multiplies its expanded features by a sigmoid
gate in (0, 1), one value per channel and position. A panel shows that gate, averaged
over channels, resized to the image and laid over it: bright where the block lets its
features through, dark where it suppresses them. By default the last DFC block of each
stage is drawn (one panel per stage); --blocks all draws every one, a row per stage.
"""
import math
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ghostnetv2_mm.models import ARCH_WIDTHS, BaseGhostNet, GhostNetV2
from ghostnetv2_mm.models.gates import collect_gates, dfc_blocks
from ghostnetv2_mm.utils.cli import (ARGUMENT_STATUS, ToolParser, UserError, check_output,
                                     existing_file, file_or_url, image_side, tool_main)
from ghostnetv2_mm.utils.fileio import atomic_output

# ImageNet statistics, RGB order, as every GhostNetV2 config normalises.
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def load_image(path: str, size: int) -> Tuple[np.ndarray, torch.Tensor]:
    import cv2
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    scale = size / min(rgb.shape[:2])
    rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)),
                           max(1, round(rgb.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tensor = torch.from_numpy((rgb.astype(np.float32) - MEAN) / STD).permute(2, 0, 1)[None]
    return rgb, tensor


def build_backbone(config: Optional[str], checkpoint: Optional[str], arch: str) -> BaseGhostNet:
    # the project's reader for every file: data only, strict, one-line errors (mmengine's
    # loader would unpickle with torch's defaults and print torch's advice instead)
    from ghostnetv2_mm.checkpoint import load_model_weights
    if config is None:
        backbone = GhostNetV2(arch, out_indices=(10,))
        if checkpoint:
            load_model_weights(backbone, checkpoint)
        return backbone.eval()
    from mmengine.config import Config
    from ghostnetv2_mm.utils.toolkit import build_model_from_config
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    if 'pretrained' in cfg.model:
        cfg.model.pretrained = None
    model = build_model_from_config(cfg)
    if checkpoint:
        load_model_weights(model, checkpoint)
    if not isinstance(model.backbone, BaseGhostNet) or not model.backbone.dfc_blocks:
        raise ValueError(f'{config}: the backbone is {type(model.backbone).__name__}, '
                         'which has no DFC attention; allowed: GhostNetV2 or GhostNetV3')
    return model.backbone.eval()


def render(rgb: np.ndarray, gates, out: str, title: str) -> str:
    import cv2
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows: Dict[int, list] = OrderedDict()
    for (stage, block), gate in gates.items():
        rows.setdefault(stage, []).append((block, gate))
    ncols = max(len(v) for v in rows.values())
    nrows = len(rows)
    if ncols == 1:  # one panel per stage: lay them out in a near-square grid
        ncols = math.ceil(math.sqrt(nrows))
        nrows = math.ceil(len(rows) / ncols)
        cells = [(stage, *entry) for stage, entries in rows.items() for entry in entries]
        positions = [(k // ncols, k % ncols) for k in range(len(cells))]
    else:
        cells, positions = [], []
        for r, (stage, entries) in enumerate(rows.items()):
            for c, entry in enumerate(entries):
                cells.append((stage, *entry))
                positions.append((r, c))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3 * ncols, 3 * nrows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    h, w = rgb.shape[:2]
    for (stage, block, gate), (r, c) in zip(cells, positions):
        mean_gate = gate[0].mean(0).numpy()
        heat = cv2.resize(mean_gate, (w, h), interpolation=cv2.INTER_NEAREST)
        ax = axes[r][c]
        ax.imshow(rgb)
        im = ax.imshow(heat, cmap='inferno', alpha=0.6, vmin=float(heat.min()),
                       vmax=float(heat.max()) + 1e-6)
        ax.set_title(f'stage {stage} · block {block} · gate {gate.shape[-2]}x{gate.shape[-1]}',
                     fontsize=9)
        bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, format='%.4f')
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output(out) as target:
        fig.savefig(target.path, dpi=100)
    plt.close(fig)
    return out


def parse_blocks(value: str) -> Optional[List[int]]:
    if value in ('last', 'all'):
        return None
    try:
        return [int(v) for v in value.split(',')]
    except ValueError:
        raise UserError(
            f"--blocks {value!r}: allowed 'last', 'all' or comma-separated bottleneck "
            'indices (0-15)', ARGUMENT_STATUS) from None


@tool_main
def main(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', type=existing_file)
    parser.add_argument('--config', type=existing_file,
                        help='a config whose backbone is GhostNetV2 or GhostNetV3')
    parser.add_argument('--checkpoint', type=file_or_url,
                        help='weights (config model, or backbone)')
    parser.add_argument('--arch', default=None, choices=sorted(ARCH_WIDTHS),
                        help='backbone width without --config (default 1.0x)')
    parser.add_argument('--blocks', default='last',
                        help="'last' (per stage), 'all', or bottleneck indices like 2,7,15")
    parser.add_argument('--size', type=image_side, default=224,
                        help='short side of the input')
    parser.add_argument('--out', default='work_dirs/dfc_attention.png')
    args = parser.parse_args(argv)
    if args.config and args.arch is not None:  # it would be ignored without a word
        parser.error('argument --arch: not allowed with --config (the config sets the '
                     'width)')
    args.arch = args.arch or '1.0x'
    check_output(args.out, '--out', suffixes=('.png', '.jpg', '.jpeg', '.pdf', '.svg'),
                 inputs=[('image', args.image), ('--config', args.config),
                         ('--checkpoint', args.checkpoint)])
    blocks = parse_blocks(args.blocks)
    backbone = build_backbone(args.config, args.checkpoint, args.arch)
    valid = {index for _, _, index, _ in dfc_blocks(backbone)}
    if blocks is not None and not set(blocks) <= valid:
        parser.error(f'--blocks {args.blocks}: blocks {sorted(set(blocks) - valid)} have no '
                     f'DFC attention; allowed: {sorted(valid)}')
    rgb, tensor = load_image(args.image, args.size)
    gates = collect_gates(backbone, tensor, blocks)
    if args.blocks == 'last':
        last = OrderedDict()
        for (stage, block), gate in gates.items():
            last[stage] = ((stage, block), gate)
        gates = OrderedDict(last.values())
    weights = args.checkpoint or 'random weights'
    out = render(rgb, gates, args.out, f'DFC attention gates (mean over channels), {weights}')
    print(f'saved {len(gates)} panels to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
