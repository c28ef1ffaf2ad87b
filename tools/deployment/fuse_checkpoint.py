#!/usr/bin/env python
"""Fold the BatchNorms of a GhostNetV2 checkpoint into its convs (deploy weights).

    python tools/deployment/fuse_checkpoint.py IN.pth OUT.pth --arch 1.0x [--type GhostNetV3]

IN may be anything the backbone loads: this project's checkpoints (a full model with
``backbone.*`` keys, or a backbone-only state dict), the official
``ck_ghostnetv2_10.pth.tar`` files or timm state dicts. OUT holds
``{'state_dict': ..., 'meta': {...}}`` and is written atomically:

* full-model input: the ``backbone.*`` entries replaced by the fused ones, every other
  entry (neck, head) unchanged;
* official/timm input: fused ``backbone.*`` plus the classifier head as mmpretrain's
  ``StackedLinearClsHead`` (``head.layers.*``);
* backbone-only input: the fused backbone keys without prefix.

Load it into a backbone BUILT IN DEPLOY MODE, e.g. in a config::

    backbone=dict(type='GhostNetV2', arch='1.0x', deploy=True,
                  init_cfg=dict(type='Pretrained', checkpoint='OUT.pth'))

or ``GhostNetV2('1.0x', deploy=True).load_state_dict(...)`` with the backbone part.
(A ``deploy=True`` backbone also accepts the unfused checkpoint and fuses it while
loading; the fused file skips that step and has no BatchNorm tensors.) Dilation,
strides and out_indices do not change the weights; ``--arch``, ``--dfc-blocks`` and
``--dfc-kernel-size`` must match the checkpoint. The tool checks the fused backbone
against the unfused one on a random input and prints the max abs difference; OUT is
written only when they agree (an existing OUT is otherwise unchanged; ``--keep-failed``
keeps the rejected file as ``NAME.failed.pth``). OUT must not be IN.
"""
import os
import sys

from ghostnetv2_mm.checkpoint import read_checkpoint, save_checkpoint_file, unwrap_state_dict
from ghostnetv2_mm.models import ARCH_WIDTHS, BASE_STAGES, FAMILY, fuse_state_dict
from ghostnetv2_mm.utils.cli import (ToolParser, check_outputs, file_or_url, int_in,
                                     kept_outputs,
                                     non_negative_int, positive_int, tool_main)
from ghostnetv2_mm.utils.fileio import atomic_output


def parse_args(argv=None):
    parser = ToolParser(description='Fuse BatchNorm into the convs of a '
                        'GhostNetV2 checkpoint (for deploy=True backbones).')
    parser.add_argument('src', type=file_or_url, help='input checkpoint (path or URL)')
    parser.add_argument('dst', help='output checkpoint (written atomically)')
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--type', default='GhostNetV2', choices=sorted(FAMILY),
                        help='backbone type of the checkpoint (default: GhostNetV2)')
    blocks = sum(len(stage) for stage in BASE_STAGES)
    parser.add_argument('--dfc-blocks', type=int_in(0, blocks - 1), nargs='*', default=None,
                        help=f'bottlenecks with DFC attention, 0 to {blocks - 1} (default: '
                        'the reference\'s)')
    parser.add_argument('--dfc-kernel-size', type=positive_int, default=5)
    parser.add_argument('--check-size', type=non_negative_int, default=96,
                        help='side of the random input for the self-check (0: skip)')
    parser.add_argument('--keep-failed', action='store_true',
                        help='when the self-check fails, keep the file as NAME.failed.pth')
    args = parser.parse_args(argv)
    if args.dfc_blocks and not FAMILY[args.type].with_dfc:
        parser.error(f'argument --dfc-blocks: {args.type} has no DFC attention; allowed '
                     'with --type ' + ', '.join(n for n in sorted(FAMILY)
                                               if FAMILY[n].with_dfc))
    if args.dfc_kernel_size % 2 == 0:
        parser.error(f'argument --dfc-kernel-size: {args.dfc_kernel_size} is not allowed: '
                     'give an odd size (1, 3, 5, ...)')
    check_outputs(kept_outputs('dst', args.dst, args.keep_failed), [('src', args.src)])
    return args


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    state = unwrap_state_dict(read_checkpoint(args.src))
    fused, diff = fuse_state_dict(state, args.arch, args.dfc_blocks, args.dfc_kernel_size,
                                  args.check_size, backbone_type=args.type)
    meta = dict(deploy=True, type=args.type, arch=args.arch,
                source=os.path.basename(args.src),
                note=f'BatchNorm folded; load into {args.type}(..., deploy=True)')
    print(f'{args.src}: {len(state)} tensors -> {len(fused)} tensors (BatchNorm folded, '
          f'{args.type} {args.arch}, deploy=True)')
    ok = diff is None or diff <= 1e-4
    if diff is not None:
        print(f'self-check on a random 1x3x{args.check_size}x{args.check_size} input: max abs '
              f'diff fused vs. unfused {diff:.2e} ' + ('OK' if ok else '(more than 1e-4)'))
    with atomic_output(args.dst, keep_failed=args.keep_failed) as out:
        save_checkpoint_file({'state_dict': fused, 'meta': meta}, out.path)
        if not ok:
            out.fail('the fused backbone differs from the unfused one')
    print(('' if ok else 'FAILED: the fused backbone differs from the unfused one; ')
          + out.outcome())
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
