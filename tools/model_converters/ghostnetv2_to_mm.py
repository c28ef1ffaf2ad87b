#!/usr/bin/env python
"""Convert official GhostNet-family weights (e.g. ck_ghostnetv2_{10,13,16}.pth.tar, a path
or its release URL) or a timm state dict into a ghostnetv2-mm checkpoint.

    python tools/model_converters/ghostnetv2_to_mm.py ck_ghostnetv2_10.pth.tar \\
        checkpoints/ghostnetv2_1.0x_in1k.pth                   # mmpretrain classifier
    python tools/model_converters/ghostnetv2_to_mm.py ck_ghostnetv2_10.pth.tar \\
        checkpoints/ghostnetv2_1.0x_backbone.pth --backbone-only  # for mmdet / mmseg

Nothing is written unless every tensor of the file has a place and all of the model's
weights were found; with --allow-partial the file is written anyway and EVERY key that
did not fit is listed.
"""
import sys

from ghostnetv2_mm.models import convert_checkpoint_file
from ghostnetv2_mm.utils.cli import ToolParser, check_output, file_or_url, tool_main


@tool_main
def main(argv=None) -> int:
    parser = ToolParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', type=file_or_url,
                        help='official .pth.tar or timm state dict (path or URL)')
    parser.add_argument('dst', help='output .pth')
    parser.add_argument('--backbone-only', action='store_true',
                        help='write only the backbone weights (bare keys)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='write even if some keys could not be placed or are missing')
    args = parser.parse_args(argv)
    check_output(args.dst, 'dst', inputs=[('src', args.src)])
    report = convert_checkpoint_file(args.src, args.dst, args.backbone_only,
                                     args.allow_partial)
    print(f'{report.backbone_type} arch {report.arch}: wrote {report.written} tensors to '
          f'{args.dst}')
    print(f'dropped {report.profiler_counters} profiler counters (total_ops/total_params)')
    for problem in report.problems:
        print(f'WARNING (--allow-partial): {problem}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
