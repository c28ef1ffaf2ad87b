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
against the unfused one on a random input and prints the max abs difference.
"""
import argparse
import os
import sys

from ghostnetv2_mm.checkpoint import read_checkpoint, save_checkpoint_file, unwrap_state_dict
from ghostnetv2_mm.models import ARCH_WIDTHS, FAMILY, fuse_state_dict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Fuse BatchNorm into the convs of a '
                                     'GhostNetV2 checkpoint (for deploy=True backbones).')
    parser.add_argument('src', help='input checkpoint')
    parser.add_argument('dst', help='output checkpoint (written atomically)')
    parser.add_argument('--arch', default='1.0x', choices=sorted(ARCH_WIDTHS))
    parser.add_argument('--type', default='GhostNetV2', choices=sorted(FAMILY),
                        help='backbone type of the checkpoint (default: GhostNetV2)')
    parser.add_argument('--dfc-blocks', type=int, nargs='*', default=None,
                        help='bottlenecks with DFC attention (default: the reference\'s)')
    parser.add_argument('--dfc-kernel-size', type=int, default=5)
    parser.add_argument('--check-size', type=int, default=96,
                        help='side of the random input for the self-check (0: skip)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    state = unwrap_state_dict(read_checkpoint(args.src))
    fused, diff = fuse_state_dict(state, args.arch, args.dfc_blocks, args.dfc_kernel_size,
                                  args.check_size, backbone_type=args.type)
    meta = dict(deploy=True, type=args.type, arch=args.arch,
                source=os.path.basename(args.src),
                note=f'BatchNorm folded; load into {args.type}(..., deploy=True)')
    save_checkpoint_file({'state_dict': fused, 'meta': meta}, args.dst)
    n_in = len(state)
    print(f'{args.src}: {n_in} tensors -> {args.dst}: {len(fused)} tensors (BatchNorm '
          f'folded, {args.type} {args.arch}, deploy=True)')
    if diff is not None:
        print(f'self-check on a random 1x3x{args.check_size}x{args.check_size} input: max abs '
              f'diff fused vs. unfused {diff:.2e}')
        if diff > 1e-4:
            print('FAILED: the fused backbone differs from the unfused one')
            return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
