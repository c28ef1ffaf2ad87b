#!/usr/bin/env python
"""Parameters and MACs of a GhostNet-family backbone/classifier or of a config's model.

    python tools/analysis/get_flops.py --arch 1.0x --classifier --shape 224
    python tools/analysis/get_flops.py --type GhostNetV3 --deploy --classifier
    python tools/analysis/get_flops.py --arch 1.3x --shape 800 1216
    python tools/analysis/get_flops.py configs/retinanet_ghostnetv2_coco.py --shape 800 1216

A config's model is counted on its plain tensor forward (backbone, neck, head; no
NMS); a two-stage detector (Mask R-CNN) on its whole exported graph, the RoI heads
on the RPN's test-time ``max_per_img`` proposals (1000 in the COCO configs).

Counting: multiply-accumulates of convolutions and linear layers only. BatchNorm is
excluded (it folds into the convolution before it), as the GhostNetV2 paper counts
(167.0 M for 1.0x at 224). thop-style counters that include BN report ~186 M.
GhostNetV3's training layout has parallel branches that ``--deploy`` sums: its
inference cost is that of the deploy network, the same as GhostNetV2's.
"""
import sys

import torch
from mmengine.registry import MODELS

from ghostnetv2_mm.deployment.wrappers import ClassifierExport, TwoStageDetectorExport
from ghostnetv2_mm.models import ARCH_WIDTHS, FAMILY, build_classifier
from ghostnetv2_mm.utils import COUNTING, count_macs, count_parameters
from ghostnetv2_mm.utils.cli import ToolParser, existing_file, image_side, tool_main


def parse_args(argv=None):
    parser = ToolParser(description='Params and MACs (conv + linear).')
    parser.add_argument('config', nargs='?', type=existing_file,
                        help='a config file (else --arch)')
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--type', default='GhostNetV2', choices=sorted(FAMILY),
                        help='with --arch: the backbone type (default: GhostNetV2)')
    parser.add_argument('--deploy', action='store_true',
                        help='with --arch: the deploy network (norms folded, GhostNetV3 '
                        'branches summed), what inference costs')
    parser.add_argument('--classifier', action='store_true',
                        help='with --arch: the full ImageNet classifier, not the backbone')
    parser.add_argument('--shape', type=image_side, nargs='+', default=[224],
                        help='input size: H (square) or H W')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2):
        parser.error(f'--shape {args.shape}: give one or two positive sizes (H, or H W)')
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    h, w = (args.shape * 2)[:2]
    if args.config:
        from mmengine.config import Config
        from ghostnetv2_mm.utils.toolkit import build_model_from_config
        network = build_model_from_config(Config.fromfile(args.config))
        if hasattr(network, 'roi_head'):
            # a two-stage detector has no plain tensor forward: count its whole graph
            # as exported, the RoI heads on the RPN's test-time max_per_img proposals
            model = TwoStageDetectorExport(network)
        else:
            # the plain network forward (mode='tensor'), no pre- or post-processing
            model = ClassifierExport(network)
        what = args.config
    else:
        name = f'{args.type} {args.arch}' + (' deploy' if args.deploy else '')
        if args.classifier:
            model = ClassifierExport(build_classifier(args.arch, backbone_type=args.type,
                                                      deploy=args.deploy))
            what = f'{name} classifier'
        else:
            model = MODELS.build(dict(type=args.type, arch=args.arch, out_indices=(10,),
                                      deploy=args.deploy))
            what = f'{name} backbone'
    macs, per_type = count_macs(model, torch.rand(1, 3, h, w))
    print(f'{what} at input 1x3x{h}x{w}')
    print(f'  params: {count_parameters(model):,}')
    print(f'  MACs:   {macs / 1e6:.1f} M  ({", ".join(f"{k} {v / 1e6:.1f} M" for k, v in per_type.items())})')
    print(f'  counting: {COUNTING}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
