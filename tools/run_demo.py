#!/usr/bin/env python
"""The ghostnetv2-mm demo (`make demo`): GhostNetV2 detection and segmentation on a
generated dataset, trained from scratch on a CPU in about ten minutes.

    python tools/run_demo.py [--work-dir work_dirs/demo] [--skip-det] [--skip-seg]

Steps, each through this project's own tools (the real mmengine runners):
1. write ToyShapes (circles, squares, triangles; COCO instances + ADE20K-style masks)
   to data/toy_shapes, unless it is already there;
2. train Mask R-CNN + GhostNetV2 (configs/demo/mask-rcnn_ghostnetv2_toyshapes.py) with
   tools/train.py, evaluate it with tools/test.py (box and mask AP) and draw its
   predictions on the validation images;
3. the same for DeepLabV3 + GhostNetV2 (configs/demo/deeplabv3_ghostnetv2_toyshapes.py,
   mIoU) when that config exists;
4. draw the pictures the README shows: the DFC attention gates of the trained detector's
   backbone on a validation image (tools/visualization/dfc_attention.py) and the
   training curves of the runs (tools/analysis/plot_curves.py);
5. print a summary: the metrics, where the pictures are, the wall time.
Full logs go to <work-dir>/<model>/{train,test}.log.
"""
import glob
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

from ghostnetv2_mm.utils.cli import (ToolParser, UserError, check_output, check_outputs,
                                     positive_int, tool_main)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

DATA_ROOT = 'data/toy_shapes'
DET_CONFIG = 'configs/demo/mask-rcnn_ghostnetv2_toyshapes.py'
SEG_CONFIG = 'configs/demo/deeplabv3_ghostnetv2_toyshapes.py'
NUM_PICTURES = 6

# progress lines worth showing from the runners' logs
_PROGRESS = re.compile(r'Iter\((train|val|test)\)|Epoch\((train|val|test)\)|'
                       r'_mAP_copypaste|mIoU:|Error|error:|Traceback|^saved ')
_METRICS = re.compile(r'^metrics: (.*)$', re.M)


def parse_args(argv=None):
    parser = ToolParser(
        description='Train and evaluate the GhostNetV2 demo models on ToyShapes (CPU).')
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='where logs, checkpoints and pictures go (default: %(default)s)')
    parser.add_argument('--skip-det', action='store_true',
                        help='skip the Mask R-CNN (detection) demo')
    parser.add_argument('--skip-seg', action='store_true',
                        help='skip the DeepLabV3 (segmentation) demo')
    parser.add_argument('--data-root', default=DATA_ROOT,
                        help='where ToyShapes is (or is written) (default: %(default)s)')
    parser.add_argument('--max-iters', type=positive_int, default=None,
                        help='override the training length (iterations), e.g. 20 for '
                        'a quick smoke run; default: the configs\' own')
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def run_logged(cmd: List[str], log_file: str, label: str) -> str:
    """Run ``cmd``, write its output to ``log_file``, show its progress lines; return
    the output. Exits with the tail of the log if the command fails."""
    say(f'  $ {" ".join(cmd)}')
    start = time.time()
    lines = []
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_file, 'w') as log, subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1) as proc:
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            if _PROGRESS.search(line):
                say(f'  [{label} {time.time() - start:5.0f}s] ' + _shorten(line.strip()))
        proc.wait()
    output = ''.join(lines)
    if proc.returncode != 0:
        tail = ''.join(lines[-25:])
        sys.exit(f'error: {label} failed (exit code {proc.returncode}); last lines of '
                 f'{log_file}:\n{tail}')
    return output


def _shorten(line: str, limit: int = 150) -> str:
    line = re.sub(r'^\d\d/\d\d \d\d:\d\d:\d\d - mmengine - \w+ - ', '', line)
    return line if len(line) <= limit else line[:limit - 3] + '...'


def last_checkpoint(work_dir: str) -> str:
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    candidates = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime)
    if not candidates:
        sys.exit(f'error: training wrote no checkpoint to {work_dir}')
    return candidates[-1]


def parse_metrics(output: str) -> Dict[str, float]:
    found = _METRICS.findall(output)
    if not found:
        return {}
    metrics = {}
    for item in found[-1].split(', '):
        key, _, value = item.partition('=')
        try:
            metrics[key.strip()] = float(value)
        except ValueError:
            pass
    return metrics


def collect_pictures(source_dir: str, target_dir: str, limit: int = NUM_PICTURES) -> int:
    """Copy the first ``limit`` pictures drawn under ``source_dir`` to ``target_dir``
    (one per file name: drawings of one name in two subfolders would replace each
    other); returns how many files were copied."""
    pictures = sorted(p for ext in ('jpg', 'png')
                      for p in glob.glob(osp.join(source_dir, '**', f'*.{ext}'),
                                         recursive=True))
    os.makedirs(target_dir, exist_ok=True)
    copied = set()
    for path in pictures:
        if len(copied) == limit:
            break
        if osp.basename(path) not in copied:
            shutil.copy(path, osp.join(target_dir, osp.basename(path)))
            copied.add(osp.basename(path))
    return len(copied)


def train_and_test(name: str, config: str, work_dir: str, data_root: str,
                   max_iters: Optional[int], steps: tuple) -> dict:
    """Train ``config`` with tools/train.py, test it with tools/test.py (drawing the
    predictions), return its metrics and where its pictures are."""
    model_dir = osp.abspath(osp.join(work_dir, name))
    os.makedirs(model_dir, exist_ok=True)
    options = []
    if data_root.rstrip('/') != DATA_ROOT:
        options += _data_root_options(config, data_root)
    if max_iters is not None:
        options.append(f'train_cfg.max_iters={max_iters}')
    python = sys.executable
    start = time.time()

    say(f'{steps[0]} training {name} ({config}) on the CPU ...')
    train_cmd = [python, 'tools/train.py', config, '--work-dir', model_dir]
    if options:
        train_cmd += ['--cfg-options'] + options
    run_logged(train_cmd, osp.join(model_dir, 'train.log'), f'{name} train')
    train_time = time.time() - start
    checkpoint = last_checkpoint(model_dir)
    say(f'  trained in {train_time:.0f}s -> {checkpoint}')

    say(f'{steps[1]} evaluating {name} on the validation images and drawing predictions ...')
    draw_dir = osp.join(model_dir, 'predictions')
    shutil.rmtree(draw_dir, ignore_errors=True)
    test_cmd = [python, 'tools/test.py', config, checkpoint,
                '--work-dir', osp.join(model_dir, 'test'), '--show-dir', draw_dir]
    test_options = [o for o in options if not o.startswith('train_cfg.')]
    if test_options:
        test_cmd += ['--cfg-options'] + test_options
    output = run_logged(test_cmd, osp.join(model_dir, 'test.log'), f'{name} test')
    metrics = parse_metrics(output)
    pictures = osp.join(osp.abspath(work_dir), 'pictures', name)
    shutil.rmtree(pictures, ignore_errors=True)
    count = collect_pictures(draw_dir, pictures)
    return dict(metrics=metrics, pictures=pictures, num_pictures=count, checkpoint=checkpoint,
                all_pictures=draw_dir, seconds=time.time() - start,
                train_seconds=train_time)


def draw_pictures(results: dict, jobs: List[tuple], work_dir: str,
                  data_root: str) -> Dict[str, str]:
    """DFC attention of the first trained model on the first validation image, and
    the training curves of every run; returns {what: PNG path}."""
    python = sys.executable
    out_dir = osp.join(osp.abspath(work_dir), 'pictures')
    os.makedirs(out_dir, exist_ok=True)
    pictures = {}
    name, config = jobs[0]
    image = sorted(glob.glob(osp.join(data_root, 'images', 'validation', '*.jpg')))[0]
    attention = osp.join(out_dir, 'dfc_attention.png')
    run_logged([python, 'tools/visualization/dfc_attention.py', image, '--config', config,
                '--checkpoint', results[name]['checkpoint'], '--size', '128',
                '--out', attention],
               osp.join(out_dir, 'dfc_attention.log'), 'dfc attention')
    pictures['DFC attention gates'] = attention
    curves = osp.join(out_dir, 'curves.png')
    names = [n for n, _ in jobs]
    run_logged([python, 'tools/analysis/plot_curves.py',
                *[osp.join(osp.abspath(work_dir), n) for n in names],
                '--names', *names, '--keys', 'loss', '--out', curves],
               osp.join(out_dir, 'curves.log'), 'curves')
    pictures['training curves'] = curves
    return pictures


def demo_outputs(work_dir: str, names: List[str]) -> List[tuple]:
    """(option, path) of the files the demo writes by name into ``work_dir`` (the
    runners' own files are checked by tools/train.py and tools/test.py)."""
    out_dir = osp.join(work_dir, 'pictures')
    files = [osp.join(work_dir, n, f'{step}.log') for n in names for step in ('train', 'test')]
    files += [osp.join(out_dir, f) for f in ('dfc_attention.png', 'dfc_attention.log',
                                             'curves.png', 'curves.log')]
    return [('--work-dir', f) for f in files]


def _data_root_options(config: str, data_root: str) -> List[str]:
    root = data_root.rstrip('/') + '/'
    options = [f'{split}_dataloader.dataset.data_root={root}'
               for split in ('train', 'val', 'test')]
    if config == DET_CONFIG:
        ann = root + 'annotations/instances_validation.json'
        options += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    return options


@tool_main
def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(ROOT)
    start = time.time()
    jobs = []
    if not args.skip_det:
        jobs.append(('mask-rcnn', DET_CONFIG))
    if not args.skip_seg:
        if osp.isfile(SEG_CONFIG):
            jobs.append(('deeplabv3', SEG_CONFIG))
        else:
            say(f'note: {SEG_CONFIG} does not exist; skipping the segmentation demo')
    if not jobs:
        raise UserError('nothing to do (--skip-det and --skip-seg both given)', 2)
    check_output(args.work_dir, '--work-dir', is_dir=True)
    check_outputs(demo_outputs(args.work_dir, [name for name, _ in jobs]),
                  [('--data-root', args.data_root)])
    steps = 2 + 2 * len(jobs)

    say(f'[1/{steps}] ToyShapes dataset in {args.data_root} ...')
    from ghostnetv2_mm.datasets.toy_shapes import make_toy_shapes
    # a ToyShapes dataset already there (any size) is used as it is
    if osp.isfile(osp.join(args.data_root, 'toy_shapes.json')):
        say('  already there')
    else:
        make_toy_shapes(args.data_root)
        say('  written (200 training, 50 validation images)')

    results = {}
    for i, (name, config) in enumerate(jobs):
        results[name] = train_and_test(name, config, args.work_dir, args.data_root,
                                       args.max_iters, (f'[{2 + 2 * i}/{steps}]',
                                                        f'[{3 + 2 * i}/{steps}]'))

    say(f'[{steps}/{steps}] drawing the DFC attention gates and the training curves ...')
    extra = draw_pictures(results, jobs, args.work_dir, args.data_root)

    wall = time.time() - start
    say('')
    say('=' * 72)
    say('GhostNetV2 demo summary (ToyShapes validation split, 50 images, '
        'trained from scratch on CPU)')
    if 'mask-rcnn' in results:
        m = results['mask-rcnn']['metrics']
        say(f'  Mask R-CNN + GhostNetV2-1.0x: box AP {_fmt(m.get("coco/bbox_mAP"))}  '
            f'(AP50 {_fmt(m.get("coco/bbox_mAP_50"))}),  mask AP '
            f'{_fmt(m.get("coco/segm_mAP"))}  (AP50 {_fmt(m.get("coco/segm_mAP_50"))})')
    if 'deeplabv3' in results:
        m = results['deeplabv3']['metrics']
        say(f'  DeepLabV3 + GhostNetV2-1.0x:  mIoU {_fmt(m.get("mIoU"), percent=True)}  '
            f'(aAcc {_fmt(m.get("aAcc"), percent=True)})')
    for name, result in results.items():
        say(f'  {name}: {result["num_pictures"]} pictures in {result["pictures"]} '
            f'(all in {result["all_pictures"]}); trained in '
            f'{result["train_seconds"]:.0f}s, {result["seconds"]:.0f}s in all')
    for label, path in extra.items():
        say(f'  {label}: {path}')
    say(f'  wall time: {wall:.0f}s ({wall / 60:.1f} min)')
    say('=' * 72)
    return 0


def _fmt(value, percent=False) -> str:
    if value is None:
        return 'n/a'
    return f'{value:.2f}' if percent else f'{value:.3f}'


if __name__ == '__main__':
    sys.exit(main())
