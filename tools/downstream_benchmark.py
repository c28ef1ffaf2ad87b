#!/usr/bin/env python
"""Downstream benchmark: the same detection or segmentation config trained and tested
with every backbone, swapped in with the config's taps and output stride.

    python tools/downstream_benchmark.py configs/demo/retinanet_ghostnetv2_toyshapes.py \\
        configs/demo/deeplabv3_ghostnetv2_toyshapes.py --backbones ghostnetv2-1.0x \\
        ghostnet-1.0x mobilenetv2 mobilenetv3-large resnet18 --init random

For every backbone the tool builds the config with that backbone (the last block of
each stride the config taps, its output stride by dilation), rewires the neck or the
heads to the backbone's channels (read from the built backbone), trains through
mmengine's Runner as tools/train.py does and tests the final weights. Everything else
(data, augmentation, evaluator, schedule unless --iters) stays as in the config.
Results: OUT/results.csv (one row per run, appended as each finishes; a rerun skips
finished rows and refuses rows of other settings), OUT/results.md (mean and spread
over seeds), OUT/metric_vs_latency.png; logs and checkpoints in
OUT/<config>/<backbone>/<seed>/. Method and results: docs/downstream.md.

On GPUs (e.g. the paper's YOLOv3 on COCO):
    torchrun --nproc_per_node 8 tools/downstream_benchmark.py \\
        configs/yolov3_ghostnetv2_320_coco.py --backbones ... --launcher pytorch
"""
import argparse

from mmengine.config import DictAction

from ghostnetv2_mm.benchmarks.catalogue import names_help
from ghostnetv2_mm.benchmarks.downstream import (BACKBONES, INITS, get_backbone, output_files,
                                                 run_downstream_benchmark)
from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, check_outputs,
                                     positive_int, tool_main)


def parse_args(argv=None):
    parser = ToolParser(
        description='Swap the backbone of detection / segmentation configs and compare '
        'the backbones: metric, parameters, MACs, CPU latency.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter, epilog=names_help())
    parser.add_argument('configs', nargs='+', metavar='CONFIG',
                        help='detection or segmentation configs with a GhostNet-family '
                        'backbone (e.g. configs/demo/*.py)')
    parser.add_argument('--backbones', nargs='+', required=True, metavar='NAME',
                        help='any of ' + ', '.join(BACKBONES))
    parser.add_argument('--out', default='work_dirs/downstream', help='output folder')
    parser.add_argument('--data-root', help='replace every dataset\'s data_root')
    parser.add_argument('--iters', type=positive_int,
                        help='train N iterations instead of the config\'s schedule (the '
                        'warm-up keeps its proportion)')
    parser.add_argument('--init', default='imagenet', choices=INITS,
                        help='imagenet: every backbone\'s ImageNet weights (by URL, cached '
                        'in torch hub\'s folder); random: all from scratch')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0],
                        help='one run per seed')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config entries, e.g. train_dataloader.batch_size=4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher (distributed training)')
    parser.add_argument('--latency-rounds', type=positive_int, default=20,
                        help='interleaved timing rounds of the backbone latency')
    args = parser.parse_args(argv)
    for name in args.backbones:
        try:
            get_backbone(name)
        except UserError as exc:
            parser.error(str(exc))
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds {args.seeds}: a seed is repeated')
    check_output(args.out, '--out', is_dir=True)
    check_outputs(output_files(args.out, args.configs, args.backbones, args.seeds),
                  [('configs', c) for c in args.configs] + [('--data-root', args.data_root)])
    return args


@tool_main
def main(argv=None):
    args = parse_args(argv)
    rows = run_downstream_benchmark(
        configs=args.configs, backbones=args.backbones, out=args.out,
        data_root=args.data_root, iters=args.iters, init=args.init, seeds=args.seeds,
        cfg_options=args.cfg_options, launcher=args.launcher,
        latency_rounds=args.latency_rounds)
    from mmengine.dist import is_main_process
    if is_main_process():
        print(f'{len(rows)} rows in {args.out}/results.csv; table: {args.out}/results.md')
    return rows


if __name__ == '__main__':
    main()
