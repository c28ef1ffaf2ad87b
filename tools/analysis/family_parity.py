#!/usr/bin/env python
"""Measure GhostNet-family parity with timm (the test oracle) and parameter counts.

    python tools/analysis/family_parity.py --size 224

For GhostNet (V1), GhostNetV2 and GhostNetV3 at 1.0x: timm's model with randomised
BatchNorm statistics, its state dict loaded into this project's backbone through the
backbone's reference-layout pre-hook, and the max abs difference of the features at
the stem and at the last block of each stride (layers 0, 3, 5, 7, 9, 10). GhostNetV3
is compared in its training layout and, after ``switch_to_deploy()``, against timm's
``reparameterize()``. Then the parameters of the full classifier (mmpretrain stock
parts) next to timm's. The tests (tests/test_family.py, tests/test_parity.py) assert
the same on smaller inputs.
"""
import sys

import torch

from ghostnetv2_mm.benchmarks.timm_reference import (create_timm_model, timm_layers,
                                                     timm_name)
from ghostnetv2_mm.models import GhostNet, GhostNetV2, GhostNetV3, build_classifier
from ghostnetv2_mm.utils import count_parameters
from ghostnetv2_mm.utils.cli import ToolParser, image_side, tool_main
from ghostnetv2_mm.utils.random_bn import randomise_bn

TAPS = (0, 3, 5, 7, 9, 10)


def max_diff(ours, reference, x):
    with torch.no_grad():
        got, expected = ours(x), timm_layers(reference, x)
    return max((got[i] - expected[i]).abs().max().item() for i in TAPS)


@tool_main
def main(argv=None):
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', type=image_side, nargs='+', default=[224],
                        help='H or H W')
    args = parser.parse_args(argv)
    if len(args.size) > 2:
        parser.error(f'--size {args.size}: give H or H W')
    import timm
    from timm.utils.model import reparameterize_model
    h, w = (args.size * 2)[:2]
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    print(f'timm {timm.__version__}, torch {torch.__version__}, input 1x3x{h}x{w}, '
          f'max abs diff over layers {TAPS}')
    for cls in (GhostNet, GhostNetV2, GhostNetV3):
        name = timm_name(cls.__name__)
        torch.manual_seed(0)
        reference = randomise_bn(create_timm_model(cls.__name__)).eval()
        ours = cls(out_indices=tuple(range(11)))
        ours.load_state_dict(reference.state_dict(), strict=True)
        ours.eval()
        print(f'  {cls.__name__:10s} vs {name}: {max_diff(ours, reference, x):.3g}')
        if cls is GhostNetV3:
            folded = reparameterize_model(reference)
            print(f'  {cls.__name__:10s} switch_to_deploy() vs {name} reparameterize(): '
                  f'{max_diff(ours.switch_to_deploy(), folded, x):.3g}')
    print('classifier parameters (ours / timm):')
    for type_name in ('GhostNet', 'GhostNetV2', 'GhostNetV3'):
        ours = count_parameters(build_classifier('1.0x', backbone_type=type_name))
        theirs = count_parameters(create_timm_model(type_name))
        print(f'  {type_name:10s} {ours:,} / {theirs:,}')
    folded = build_classifier('1.0x', backbone_type='GhostNetV3')
    folded.backbone.reparameterize()
    theirs = count_parameters(reparameterize_model(create_timm_model('GhostNetV3')))
    print(f'  GhostNetV3 branches folded (reparameterize()) {count_parameters(folded):,} / '
          f'{theirs:,}')
    deployed = build_classifier('1.0x', backbone_type='GhostNetV3', deploy=True)
    v2_deployed = build_classifier('1.0x', backbone_type='GhostNetV2', deploy=True)
    print(f'  GhostNetV3 deployed (every norm folded) {count_parameters(deployed):,}, '
          f'GhostNetV2 deployed {count_parameters(v2_deployed):,}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
