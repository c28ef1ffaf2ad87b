#!/usr/bin/env python
"""Transfer-learning benchmark: GhostNetV2 1.0x/1.3x/1.6x against the catalogue's peers.

    python tools/transfer_benchmark.py --datasets digits \\
        --backbones ghostnetv2-1.0x mobilenetv2 --out work_dirs/transfer

Protocol (fixed, identical for every backbone; see docs/transfer.md):

* Model: the backbone's last feature map -> global average pooling -> one linear layer
  (no dropout). ImageNet-specific neck layers (GhostNetV2's 1280-d conv head,
  MobileNetV3's 1280-d hidden FC) are not used, so every backbone gets the same head.
  Params and MACs are those of this model at the benchmark resolution (MACs: conv +
  linear multiply-accumulates, BN excluded, ``ghostnetv2_mm.utils.count_macs``).
* Input: every image is resized to ``--img-size`` squared (bilinear) and normalised with
  the ImageNet mean/std. Train-time augmentation (fine-tuning only): reflect-pad by
  img_size/8 and random-crop back, plus a horizontal flip with p=0.5 except on 'digits'.
* ``linear`` (linear probe): the backbone is frozen in eval mode; pooled features of the
  train and test splits are extracted once, standardised with the train statistics,
  and a multinomial logistic regression (scikit-learn, L-BFGS, C=1.0, max_iter=1000)
  is fitted on train and scored on test.
* ``finetune``: all weights trained for ``--epochs`` epochs, batch 64, SGD (momentum 0.9,
  Nesterov) with lr ``--lr``, weight decay 1e-4 (none on BN and biases), global
  gradient norm clipped to 1.0, linear warm-up over the first epoch then cosine decay
  to 0; BN in train mode. The accuracy is that
  of the final weights on the test split (no model selection on test).
* Seeds: ``--seed`` seeds the weight initialisation of every backbone and head, the data
  order and the augmentation; splits are the datasets' official ones ('digits': a fixed
  stratified 75/25 split, random_state=0).
* Weights: random initialisation unless ``--weights NAME=PATH`` is given; the 'init'
  column of the table says which.
* ``--device cuda`` runs extraction and fine-tuning on a GPU (default: CPU).
* CPU latency: batch 1, ``--latency-threads`` threads, median of ``--latency-runs`` timed
  forward passes after 3 warm-up passes, at ``--img-size``.

Results are appended to ``OUT/results.csv`` one row per (dataset, backbone, protocol) as
soon as each finishes; a rerun skips the rows already there (resume), and refuses to mix
rows obtained with other settings. ``OUT/results.md`` and ``OUT/accuracy_vs_macs.png``
are rewritten from the CSV after each row.
"""
import argparse
import os
from typing import List, Sequence

from ghostnetv2_mm.benchmarks.catalogue import names_help, resolve
from ghostnetv2_mm.benchmarks.transfer import (DEFAULT_BACKBONES, MMPRETRAIN_DATASETS,
                                               PROTOCOLS, output_files, run_benchmark)
from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, check_outputs,
                                     image_side, non_negative_int, positive_float,
                                     positive_int, tool_main)


def _split_list(values: Sequence[str]) -> List[str]:
    return [v for item in values for v in item.split(',') if v]


def parse_args(argv=None):
    parser = ToolParser(
        description='Linear-probe and fine-tuning transfer benchmark of GhostNetV2 '
        'against mmpretrain baselines (protocol in the module docstring).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=names_help())
    parser.add_argument('--datasets', nargs='+', default=['digits'],
                        help='digits, ' + ', '.join(sorted(MMPRETRAIN_DATASETS)) +
                        ', or an image folder as NAME=PATH (PATH/train/<class>/*, '
                        'PATH/test/<class>/* or PATH/val/<class>/*)')
    parser.add_argument('--data-root', default='data',
                        help='folder holding the datasets in their standard layouts')
    parser.add_argument('--backbones', nargs='+', default=list(DEFAULT_BACKBONES),
                        metavar='NAME', help='networks of the catalogue (below)')
    parser.add_argument('--protocols', default='linear,finetune',
                        help='comma-separated subset of linear,finetune')
    parser.add_argument('--epochs', type=positive_int, default=10, help='fine-tuning epochs')
    parser.add_argument('--lr', type=positive_float, default=0.05, help='fine-tuning peak lr')
    parser.add_argument('--batch-size', type=positive_int, default=64, help='fine-tuning batch')
    parser.add_argument('--img-size', type=image_side, default=32,
                        help='input resolution for every backbone (use 224 for the '
                        'natural-image datasets)')
    parser.add_argument('--weights', nargs='*', default=[], metavar='NAME=PATH',
                        help='ImageNet weights for a backbone (official GhostNetV2 '
                        '.pth.tar, timm or mmpretrain checkpoints); random init otherwise')
    parser.add_argument('--out', default='work_dirs/transfer', help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--max-train', type=non_negative_int, default=None,
                        help='use a fixed random subset of the train split (smoke tests)')
    parser.add_argument('--max-test', type=non_negative_int, default=None,
                        help='use a fixed random subset of the test split (smoke tests)')
    parser.add_argument('--workers', type=non_negative_int, default=0, help='data loader workers')
    parser.add_argument('--threads', type=positive_int, default=None,
                        help='torch threads for training/extraction (default: torch\'s)')
    parser.add_argument('--device', default='cpu',
                        help='where to extract features and fine-tune (e.g. cuda); '
                        'latency is always measured on the CPU')
    parser.add_argument('--latency-threads', type=positive_int, default=1)
    parser.add_argument('--latency-runs', type=positive_int, default=30)
    args = parser.parse_args(argv)
    args.datasets = _split_list(args.datasets)
    args.backbones = _split_list(args.backbones)
    args.protocols = _split_list([args.protocols])
    try:
        args.backbones = [resolve(b, argument='--backbones').name for b in args.backbones]
    except UserError as exc:
        parser.error(str(exc))
    for p in args.protocols:
        if p not in PROTOCOLS:
            parser.error(f'unknown protocol {p!r}; choose from {", ".join(PROTOCOLS)}')
    weights = {}
    for item in args.weights:
        name, sep, path = item.partition('=')
        if not sep:
            parser.error(f'--weights {item!r}: expected NAME=PATH')
        try:
            name = resolve(name, argument=f'--weights {item}').name
        except UserError as exc:
            parser.error(str(exc))
        if '://' not in path and not os.path.isfile(path):  # else found after other runs
            parser.error(f'--weights {item!r}: no such file {path!r}')
        weights[name] = path
    args.weights = weights
    if args.img_size < 8 or args.epochs < 1:
        parser.error('--img-size must be >= 8 and --epochs >= 1')
    check_output(args.out, '--out', is_dir=True)
    check_outputs(output_files(args.out), [('--weights', p) for p in weights.values()]
                  + [('--datasets', d.partition('=')[2]) for d in args.datasets if '=' in d])
    return args


@tool_main
def main(argv=None) -> List[dict]:
    args = parse_args(argv)
    return run_benchmark(
        datasets=args.datasets, backbones=args.backbones, protocols=args.protocols,
        out=args.out, data_root=args.data_root, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, img_size=args.img_size, weights=args.weights,
        seed=args.seed, max_train=args.max_train, max_test=args.max_test,
        workers=args.workers, threads=args.threads, device=args.device,
        latency_threads=args.latency_threads, latency_runs=args.latency_runs)


if __name__ == '__main__':
    main()
