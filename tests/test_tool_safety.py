"""Every case of issue 19 through the real tools (issue 19: tools a user can trust).

Each case is a command line of a tool in ``tools/`` with what must come of it: the
exit status, the ONE ``error:`` line (no traceback) or what stdout says, that no file
that existed before changed (hashes before and after) unless the case replaces it on
purpose, and that no temporary file is left. The cases of one tool run together in
one Python process (``tests/tool_batch.py``), so the table costs a few interpreter
starts. The SIGTERM case runs the export on its own and kills it while it works.

The inputs are made here: random-weight checkpoints of small variants of the
configs, generated images, broken files.
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import ROOT, once, randomise_bn
from helpers import (DEEPLABV3, DEEPLABV3_OPTIONS, RETINANET, RETINANET_OPTIONS,
                     eval_payload)
from helpers import random_checkpoint as _random_checkpoint

YOLOV3 = os.path.join(ROOT, 'configs', 'yolov3_ghostnetv2_320_coco.py')
TINY_TRAIN = os.path.join(ROOT, 'tests', 'configs', 'retinanet_ghostnetv2_toyshapes_tiny.py')
EXPORT, QUANTIZE, INFER, FUSE = (f'tools/deployment/{n}.py' for n in (
    'export_onnx', 'quantize_onnx', 'onnx_infer', 'fuse_checkpoint'))


def options(table):
    return ['--cfg-options'] + [f'{k}={v}' for k, v in table.items()]


RETINA = ['--config', RETINANET, '--checkpoint', '{retina.pth}', '--export-size', '64',
          '--check-sizes', '64']
RETINA_OPTS = options(RETINANET_OPTIONS)
NOTHING = options({**RETINANET_OPTIONS, 'model.test_cfg.score_thr': 1.0})  # > 1: none
BACKBONE = ['--arch', '1.0x', '--out-indices', '5', '--export-size', '32',
            '--check-sizes', '32']
COCO_FIRST_CLASSES = ('person', 'bicycle', 'car')  # labels 0-2 of the 3-class heads
ADE20K_FIRST_CLASSES = ('wall', 'building', 'sky', 'floor', 'tree')

# id, tool, argv ({name} = a file made by ``world``), exit status, the error line
# (a fragment), fragments of stdout, files the case creates (or must not: '!name'),
# pre-existing files it replaces on purpose.
CASES = [
    # ----------------------------------------------------------- 1-3: data loss
    dict(id='export-out-is-the-checkpoint', tool=EXPORT,
         argv=RETINA + ['--out', '{retina.pth}'] + RETINA_OPTS, status=2,
         error="--out '{retina.pth}': is the same file as --checkpoint"),
    dict(id='export-out-is-not-onnx', tool=EXPORT,
         argv=BACKBONE + ['--out', '{out}/model.pth'], status=2,
         error='the file name must end with .onnx', creates=['!out/model.pth']),
    dict(id='export-broken-check-image-keeps-the-old-file', tool=EXPORT,
         argv=RETINA + ['--out', '{old_a.onnx}', '--check-images', '{broken_dir}']
         + RETINA_OPTS, status=1, error="image '{broken_dir}/broken.jpg' cannot be read"),
    dict(id='export-nothing-compared-fails-and-keeps-the-old-file', tool=EXPORT,
         argv=RETINA + ['--out', '{old_b.onnx}'] + NOTHING, status=1,
         stdout=['FAILED: nothing was compared', 'lower the score threshold',
                 '--check-images', 'not written (the existing file is unchanged)'],
         creates=['!old_b.failed.onnx']),
    dict(id='export-keep-failed-keeps-the-rejected-file-apart', tool=EXPORT,
         argv=RETINA + ['--out', '{old_c.onnx}', '--keep-failed'] + NOTHING, status=1,
         stdout=['FAILED: nothing was compared', 'kept as'],
         creates=['old_c.failed.onnx']),
    dict(id='export-replacing-says-so', tool=EXPORT,
         argv=BACKBONE + ['--out', '{old_d.onnx}'], status=0,
         stdout=['PASSED', 'replaced the existing file'], replaces=['old_d.onnx']),
    # (the issue's flat 1x1 image, 800x800 after resizing; ties: see the tests below)
    dict(id='export-flat-image-passes', tool=EXPORT,
         argv=RETINA + ['--out', '{out}/flat.onnx', '--check-images', '{flat.png}']
         + options({**RETINANET_OPTIONS, 'model.test_cfg.score_thr': 0.0}), status=0,
         stdout=['PASSED'], creates=['out/flat.onnx']),
    dict(id='quantize-dst-is-src', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{backbone.onnx}', '--calib-dir', '{calib}',
               '--size', '32'], status=2,
         error="dst '{backbone.onnx}': is the same file as src"),
    dict(id='quantize-judges-against-the-tolerance', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{old_e.onnx}', '--calib-dir', '{calib}', '--size', '32',
               '--tolerance', '0'], status=1,
         stdout=['OUTSIDE the tolerance', 'FAILED', 'the existing file is unchanged']),
    dict(id='quantize-within-the-tolerance-passes', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{out}/int8.onnx', '--calib-dir', '{calib}', '--size',
               '32', '--tolerance', '1'], status=0,
         stdout=['OK', 'PASSED: wrote'], creates=['out/int8.onnx']),
    dict(id='infer-out-file-is-the-image', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{photo.png}', '--out-file', '{photo.png}'],
         status=2, error="--out-file '{photo.png}': is the same file as image"),
    # ------------------------------------------------------- 5-9: false results
    dict(id='demo-loads-strictly', tool='tools/demo.py',
         argv=['{photo.png}', RETINANET, '{resnet18.pth}', '--out-dir', '{out}/demo_a']
         + RETINA_OPTS, status=1, error='does not fit', creates=['!out/demo_a']),
    dict(id='infer-refuses-another-normalisation', tool=INFER,
         argv=[YOLOV3, '{retina.onnx}', '{photo.png}', '--out-file', '{out}/y.png'],
         status=1, error='was not exported with config', creates=['!out/y.png']),
    # ---------------------------------------------------------- 10: class names
    dict(id='infer-detector-prints-class-names', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{photo.png}', '--out-file', '{out}/r.png',
               '--score-thr', '0'], status=0, stdout=['detections'],
         names=COCO_FIRST_CLASSES, creates=['out/r.png']),
    dict(id='infer-ade20k-segmentor-works', tool=INFER,
         argv=[DEEPLABV3, '{deeplab.onnx}', '{photo.png}', '--out-file', '{out}/d.png'],
         status=0, stdout=['pixels per class'], names=ADE20K_FIRST_CLASSES,
         creates=['out/d.png']),
    dict(id='demo-ade20k-state-dict-without-meta', tool='tools/demo.py',
         argv=['{photo.png}', DEEPLABV3, '{deeplab.pth}', '--out-dir', '{out}/demo_b']
         + options(DEEPLABV3_OPTIONS), status=0, stdout=['saved 1 picture'],
         creates=['out/demo_b/photo.png']),
    dict(id='demo-out-dir-holding-the-input-is-refused', tool='tools/demo.py',
         argv=['{pngs}', RETINANET, '{retina.pth}', '--out-dir', '{pngs}'] + RETINA_OPTS,
         status=2, error="is the same file as inputs"),
    # --------------------------------------------------- 11: one line, no traceback
    dict(id='export-wrong-checkpoint', tool=EXPORT,
         argv=RETINA[:3] + ['{resnet18.pth}'] + ['--out', '{out}/w.onnx'] + RETINA_OPTS,
         status=1, error='does not fit RetinaNet'),
    dict(id='export-missing-checkpoint', tool=EXPORT,
         argv=BACKBONE + ['--checkpoint', '{out}/nope.pth', '--out', '{out}/w.onnx'],
         status=2, error="argument --checkpoint: '{out}/nope.pth': no such file"),
    dict(id='export-missing-config', tool=EXPORT,
         argv=['--config', '{out}/nope.py', '--out', '{out}/w.onnx'], status=2,
         error="argument --config: '{out}/nope.py': no such file"),
    dict(id='export-text-file-as-checkpoint', tool=EXPORT,
         argv=BACKBONE + ['--checkpoint', '{text.pth}', '--out', '{out}/w.onnx'],
         status=1, error='is not a PyTorch checkpoint'),
    dict(id='export-folder-as-checkpoint', tool=EXPORT,
         argv=BACKBONE + ['--checkpoint', '{calib}', '--out', '{out}/w.onnx'],
         status=2, error='is a folder, expected a file'),
    dict(id='export-opset-5', tool=EXPORT, argv=BACKBONE + ['--opset', '5', '--out',
                                                            '{out}/w.onnx'],
         status=2, error="argument --opset: '5' is not allowed: give an integer from 11"),
    dict(id='export-out-is-a-folder', tool=EXPORT, argv=BACKBONE + ['--out', '{calib}'],
         status=2, error='is a folder, expected a file name'),
    dict(id='export-out-under-a-file', tool=EXPORT,
         argv=BACKBONE + ['--out', '{photo.png}/x.onnx'], status=2,
         error='is a file, so nothing can be written under it'),
    dict(id='fuse-wrong-checkpoint', tool=FUSE,
         argv=['{resnet18.pth}', '{out}/f.pth'], status=1, error='does not fit'),
    dict(id='fuse-missing-checkpoint', tool=FUSE, argv=['{out}/nope.pth', '{out}/f.pth'],
         status=2, error='no such file'),
    dict(id='fuse-check-size-negative', tool=FUSE,
         argv=['{backbone.pth}', '{out}/f.pth', '--check-size', '-3'], status=2,
         error="argument --check-size: '-3' is not allowed"),
    dict(id='fuse-image-as-checkpoint', tool=FUSE, argv=['{photo.png}', '{out}/f.pth'],
         status=1, error="cannot read checkpoint '{photo.png}': it is not a PyTorch"),
    dict(id='fuse-dst-is-src', tool=FUSE, argv=['{backbone.pth}', '{backbone.pth}'],
         status=2, error='is the same file as src'),
    dict(id='infer-missing-config', tool=INFER,
         argv=['{out}/nope.py', '{retina.onnx}', '{photo.png}'], status=2,
         error="argument config: '{out}/nope.py': no such file"),
    dict(id='infer-threads-negative', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{photo.png}', '--threads', '-2'], status=2,
         error="argument --threads: '-2' is not allowed"),
    dict(id='infer-image-is-a-folder', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{calib}'], status=2,
         error='is a folder, expected a file'),
    dict(id='infer-out-file-without-extension', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{photo.png}', '--out-file', '{out}/drawing'],
         status=2, error='the file name must end with'),
    dict(id='infer-non-image', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{text.pth}', '--out-file', '{out}/n.png'],
         status=1, error="image '{text.pth}' cannot be read as an image"),
    dict(id='infer-empty-image', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{empty.png}', '--out-file', '{out}/n.png'],
         status=1, error="image '{empty.png}' cannot be read as an image"),
    dict(id='infer-corrupt-image', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{broken_dir}/broken.jpg', '--out-file',
               '{out}/n.png'], status=1, error='cannot be read as an image'),
    dict(id='infer-bad-onnx-file', tool=INFER,
         argv=[RETINANET, '{bad.onnx}', '{photo.png}', '--out-file', '{out}/n.png'],
         status=1, error="'{bad.onnx}' is not a readable ONNX file"),
    dict(id='quantize-junk-in-the-calibration-folder', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{out}/q.onnx', '--calib-dir', '{broken_dir}',
               '--size', '32'], status=1, error="broken.jpg' cannot be read as an image"),
    dict(id='quantize-float-prefix-names-no-node', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{out}/q.onnx', '--calib-dir', '{calib}', '--size', '32',
               '--placement', 'integer', '--float-prefix', '/no/such/'], status=2,
         error="--float-prefix ['/no/such/']: match no node name"),
    dict(id='quantize-integer-placement-passes', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{out}/int8i.onnx', '--calib-dir', '{calib}', '--size',
               '32', '--placement', 'integer', '--float-prefix', '/backbone/layer0/',
               '--tolerance', '1'], status=0,
         stdout=['int8 : ', 'Concat', 'PASSED: wrote'], creates=['out/int8i.onnx']),
    dict(id='quantize-size-0', tool=QUANTIZE,
         argv=['{backbone.onnx}', '{out}/q.onnx', '--calib-dir', '{calib}', '--size', '0'],
         status=2, error="argument --size: '0' is not allowed"),
    dict(id='flops-missing-config', tool='tools/analysis/get_flops.py',
         argv=['{out}/nope.py'], status=2, error="'{out}/nope.py': no such file"),
    dict(id='converter-dst-is-src', tool='tools/model_converters/ghostnetv2_to_mm.py',
         argv=['{backbone.pth}', '{backbone.pth}'], status=2,
         error='is the same file as src'),
    dict(id='train-resume-truncated', tool='tools/train.py',
         argv=[TINY_TRAIN, '--work-dir', '{out}/t1', '--resume', '{truncated.pth}',
               '--cfg-options', '{data_options}'], status=1,
         error="--resume: cannot read checkpoint '{truncated.pth}'"),
    dict(id='train-resume-another-models-file', tool='tools/train.py',
         argv=[TINY_TRAIN, '--work-dir', '{out}/t2', '--resume', '{resnet18.pth}',
               '--cfg-options', '{data_options}'], status=1,
         error='--resume: ', error_also='does not fit RetinaNet'),
    # ---------------------------------------- 13: the getattr guard, tool readers
    dict(id='train-resume-getattr-walk', tool='tools/train.py',
         argv=[TINY_TRAIN, '--work-dir', '{out}/t3', '--resume', '{eval.pth}',
               '--cfg-options', '{data_options}'], status=1,
         error='refused to load checkpoint', error_also='getattr(',
         creates=['!eval.ran']),
    dict(id='train-load-from-getattr-walk', tool='tools/train.py',
         argv=[TINY_TRAIN, '--work-dir', '{out}/t4', '--cfg-options', '{data_options}',
               'load_from={eval.pth}'], status=1,
         error='refused to load checkpoint', error_also='getattr(',
         creates=['!eval.ran']),
]

# ------------------------------------------------- issue 25 item 3: no file lost
# on any path: an output that is a device or a FIFO, a derived output (NAME.failed.EXT,
# --plot, files written into --workdir / --out / --out-dir / --work-dir / --show-dir)
# that is an input or another output, two pictures of one name.
ISSUE25_FILES = [
    # a device or a FIFO as the output: refused with one line, never renamed over
    dict(id='export-out-is-a-fifo', tool=EXPORT, argv=BACKBONE + ['--out', '{fifo.onnx}'],
         status=2, error="--out '{fifo.onnx}': is a FIFO (named pipe), not a regular file"),
    dict(id='fuse-dst-is-dev-null', tool=FUSE, argv=['{backbone.pth}', '/dev/null'],
         status=2, error="dst '/dev/null': is a character device, not a regular file"),
    dict(id='converter-dst-is-dev-null', tool='tools/model_converters/ghostnetv2_to_mm.py',
         argv=['{backbone.pth}', '/dev/null'], status=2,
         error="dst '/dev/null': is a character device"),
    dict(id='quantize-dst-is-dev-null', tool=QUANTIZE,
         argv=['{backbone.onnx}', '/dev/null', '--calib-dir', '{calib}', '--size', '32'],
         status=2, error="dst '/dev/null': is a character device"),
    dict(id='benchmark-out-is-dev-null', tool='tools/analysis/benchmark.py',
         argv=['--models', 'ghostnetv2', '--sizes', '32', '--out', '/dev/null'], status=2,
         error="--out '/dev/null': is a character device"),
    dict(id='int8-study-out-is-a-fifo', tool='tools/analysis/int8_study.py',
         argv=['--out', '{fifo.onnx}'], status=2, error='is a FIFO (named pipe)'),
    dict(id='onnx-profile-label-given-twice', tool='tools/analysis/onnx_profile.py',
         argv=['--onnx', 'ours={backbone.onnx}', 'ours={backbone.onnx}'], status=2,
         error="argument --onnx: the label 'ours' is given twice"),
    dict(id='int8-routes-pt2e-size-not-timed', tool='tools/analysis/int8_routes.py',
         argv=['--sizes', '224', '--pt2e-sizes', '640'], status=2,
         error='argument --pt2e-sizes: [640] not among --sizes [224]'),
    dict(id='int8-routes-nothing-timed', tool='tools/analysis/int8_routes.py',
         argv=['--no-onnx', '--pt2e-sizes'], status=2,
         error='argument --no-onnx: nothing would be timed'),
    dict(id='int8-routes-breakdown-ignores-seed', tool='tools/analysis/int8_routes.py',
         argv=['--breakdown', '{backbone.onnx}', '--seed', '3'], status=2,
         error='argument --seed: not allowed with --breakdown'),
    dict(id='int8-routes-breakdown-writes-its-out', tool='tools/analysis/int8_routes.py',
         argv=['--breakdown', '{backbone.onnx}', '--sizes', '32', '--rounds', '1',
               '--out', '{out}/breakdown.md'], status=0, stdout=['depthwise conv'],
         creates=['out/breakdown.md']),
    dict(id='int8-study-onnx-needs-a-detector-config', tool='tools/analysis/int8_study.py',
         argv=['--onnx', '{backbone.onnx}'], status=2,
         error='argument --onnx: required with --detector-config, and only with it'),
    dict(id='int8-study-digits-option-with-detector-config',
         tool='tools/analysis/int8_study.py',
         argv=['--detector-config', RETINANET, '--onnx', '{backbone.onnx}', '--epochs', '3'],
         status=2, error='argument --epochs: not allowed with --detector-config'),
    dict(id='int8-study-out-is-an-onnx-input', tool='tools/analysis/int8_study.py',
         argv=['--detector-config', RETINANET, '--onnx', '{backbone.onnx}', '--out',
               '{backbone.onnx}'], status=2,
         error="--out '{backbone.onnx}': is the same file as --onnx"),
    dict(id='int8-study-onnx-is-no-detector', tool='tools/analysis/int8_study.py',
         argv=['--detector-config', RETINANET, '--onnx', '{backbone.onnx}'], status=1,
         error="are neither a detector's"),
    dict(id='gpu-benchmark-out-is-dev-null', tool='tools/analysis/gpu_benchmark.py',
         argv=['--out', '/dev/null'], status=2, error="--out '/dev/null': is a character"),
    dict(id='demo-picture-is-a-fifo', tool='tools/demo.py',
         argv=['{photo.png}', DEEPLABV3, '{deeplab.pth}', '--out-dir', '{fifodir}']
         + options(DEEPLABV3_OPTIONS), status=2,
         error="--out-dir '{fifodir}/photo.png': is a FIFO (named pipe)"),
    dict(id='downstream-report-is-a-fifo', tool='tools/downstream_benchmark.py',
         argv=['configs/demo/deeplabv3_ghostnetv2_toyshapes.py', '--backbones',
               'ghostnetv2-1.0x', '--out', '{fifodir}'], status=2,
         error="--out '{fifodir}/results.md': is a FIFO (named pipe)"),
    # NAME.failed.EXT of --keep-failed is an input
    dict(id='fuse-keep-failed-name-is-the-source', tool=FUSE,
         argv=['{bb.failed.pth}', '{root}/bb.pth', '--keep-failed'], status=2,
         error="--keep-failed '{bb.failed.pth}': is the same file as src"),
    dict(id='export-keep-failed-name-is-the-checkpoint', tool=EXPORT,
         argv=BACKBONE + ['--checkpoint', '{ck.failed.onnx}', '--out', '{root}/ck.onnx',
                          '--keep-failed'], status=2,
         error="--keep-failed '{ck.failed.onnx}': is the same file as --checkpoint"),
    dict(id='quantize-keep-failed-name-is-the-source', tool=QUANTIZE,
         argv=['{q.failed.onnx}', '{root}/q.onnx', '--calib-dir', '{calib}', '--size', '32',
               '--keep-failed'], status=2,
         error="--keep-failed '{q.failed.onnx}': is the same file as src"),
    # two outputs of one name; an output folder holding an input's name
    dict(id='benchmark-plot-is-the-out', tool='tools/analysis/benchmark.py',
         argv=['--models', 'ghostnetv2', '--sizes', '32', '--out', '{out}/b.md', '--plot',
               '{out}/b.md'], status=2,
         error="--plot '{out}/b.md': is the same file as --out", creates=['!out/b.md']),
    dict(id='onnx-profile-peer-export-is-an-input', tool='tools/analysis/onnx_profile.py',
         argv=['--onnx', 'ours={peers}/mobilenetv3-large.onnx', '--peers',
               'mobilenetv3-large', '--workdir', '{peers}'], status=2,
         error="--workdir '{peers}/mobilenetv3-large.onnx': is the same file as --onnx ours"),
    # (a picture name cannot be an .onnx input: refused by its suffix before the
    # same-file rule is reached)
    dict(id='onnx-profile-plot-is-an-input', tool='tools/analysis/onnx_profile.py',
         argv=['--onnx', 'ours={backbone.onnx}', '--top1', 'ours=75.3', '--plot',
               '{backbone.onnx}'], status=2,
         error="--plot '{backbone.onnx}': the file name must end with .png"),
    dict(id='transfer-report-is-the-weights', tool='tools/transfer_benchmark.py',
         argv=['--backbones', 'ghostnetv2-1.0x', '--weights',
               'ghostnetv2-1.0x={transfer}/results.md', '--out', '{transfer}'], status=2,
         error="--out '{transfer}/results.md': is the same file as --weights"),
    dict(id='demo-cat-jpg-and-cat-bmp-get-two-pictures', tool='tools/demo.py',
         argv=['{cats}', DEEPLABV3, '{deeplab.pth}', '--out-dir', '{out}/demo_c']
         + options(DEEPLABV3_OPTIONS), status=0, stdout=['saved 2 picture(s)'],
         creates=['out/demo_c/cat.jpg.png', 'out/demo_c/cat.bmp.png', '!out/demo_c/cat.png']),
    # mmengine's config dump into --work-dir; --show-dir drawings
    dict(id='train-work-dir-is-the-configs-folder', tool='tools/train.py',
         argv=['{cfgdir}/tiny.py', '--work-dir', '{cfgdir}', '--cfg-options',
               '{data_options}'], status=2,
         error="--work-dir '{cfgdir}': mmengine's runner writes the config to",
         error_also='replacing the config itself'),
    dict(id='test-work-dir-is-the-configs-folder', tool='tools/test.py',
         argv=['{cfgdir}/tiny.py', '{retina.pth}', '--work-dir', '{cfgdir}',
               '--cfg-options', '{data_options}'], status=2,
         error='replacing the config itself'),
    dict(id='test-show-dir-is-the-test-images', tool='tools/test.py',
         argv=[TINY_TRAIN, '{retina.pth}', '--work-dir', '{out}/t6', '--show-dir',
               '{toy}/images/validation', '--cfg-options', '{data_options}'], status=2,
         error='is the folder of the test images'),
]
CASES += ISSUE25_FILES


# ====================================================== issue 25 items 4-5 (begin)
# No false success: NaN/inf refused by every float option, misspelt config keys and
# node names refused, options of another mode refused; one line (exit 2 for an
# argument) where a tool said "unexpected", gave a raw error or was killed.
DEMO, PROFILE, BENCH = 'tools/demo.py', 'tools/analysis/onnx_profile.py', \
    'tools/analysis/benchmark.py'
DFC, TRANSFER = 'tools/visualization/dfc_attention.py', 'tools/transfer_benchmark.py'
DOWNSTREAM = 'tools/downstream_benchmark.py'
MISSPELT = ['--cfg-options', 'modle.backbone.arch=1.3x']
QUANT = ['{backbone.onnx}', '{out}/q25.onnx', '--calib-dir', '{calib}', '--size', '32']
NOT_FINITE = "is not allowed: give a finite number"
CASES += [
    # ------------------------------------------------ 4: non-finite numbers refused
    dict(id='demo-score-thr-nan', tool=DEMO,
         argv=['{photo.png}', RETINANET, '{retina.pth}', '--score-thr', 'nan'], status=2,
         error=f"argument --score-thr: 'nan' {NOT_FINITE}"),
    dict(id='infer-score-thr-inf', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{photo.png}', '--score-thr', 'inf'], status=2,
         error=f"argument --score-thr: 'inf' {NOT_FINITE}"),
    dict(id='quantize-tolerance-nan', tool=QUANTIZE, argv=QUANT + ['--tolerance', 'nan'],
         status=2, error=f"argument --tolerance: 'nan' {NOT_FINITE}"),
    dict(id='quantize-mean-inf', tool=QUANTIZE,
         argv=QUANT + ['--mean', '1', 'inf', '2'], status=2,
         error=f"argument --mean: 'inf' {NOT_FINITE}"),
    dict(id='quantize-std-nan', tool=QUANTIZE,
         argv=QUANT + ['--std', '1', '1', 'nan'], status=2,
         error=f"argument --std: 'nan' {NOT_FINITE}"),
    dict(id='onnx-profile-minus-inf', tool=PROFILE,  # (-inf reads as an option unless =)
         argv=['--onnx', 'ours={backbone.onnx}', '--top1=ours=-inf'], status=2,
         error=f"argument --top1: 'ours=-inf': ACC '-inf' {NOT_FINITE}"),
    dict(id='transfer-lr-nan', tool=TRANSFER,
         argv=['--backbones', 'ghostnetv2-1.0x', '--out', '{out}/tr_nan', '--lr', 'NaN'],
         status=2, error=f"argument --lr: 'NaN' {NOT_FINITE}", creates=['!out/tr_nan']),
    dict(id='profile-top1-nan', tool=PROFILE,
         argv=['--onnx', 'ours={backbone.onnx}', '--top1', 'ours=nan'], status=2,
         error=f"argument --top1: 'ours=nan': ACC 'nan' {NOT_FINITE}"),
    # ----------------------------------- 5: misspelt --cfg-options keys refused
    dict(id='export-cfg-options-misspelt', tool=EXPORT,
         argv=RETINA + ['--out', '{out}/m.onnx'] + MISSPELT, status=2,
         error="--cfg-options modle.backbone.arch=...: 'modle' is not in the config",
         error_also="did you mean 'model'?", creates=['!out/m.onnx']),
    dict(id='demo-cfg-options-misspelt', tool=DEMO,
         argv=['{photo.png}', RETINANET, '{retina.pth}', '--out-dir', '{out}/demo_m']
         + MISSPELT, status=2, error="'modle' is not in the config",
         creates=['!out/demo_m']),
    dict(id='train-cfg-options-misspelt', tool='tools/train.py',
         argv=[TINY_TRAIN, '--work-dir', '{out}/t_m', '--cfg-options',
               'train_cfg.max_iters=1', 'modle.backbone.arch=1.3x'], status=2,
         error="'modle' is not in the config", creates=['!out/t_m']),
    # ------------------ 5: options of another mode, values out of range: exit 2
    dict(id='export-out-indices-11', tool=EXPORT,
         argv=BACKBONE[:2] + ['--out-indices', '11', '--out', '{out}/i.onnx'], status=2,
         error="argument --out-indices: '11' is not allowed: give an integer from -11 to 10"),
    dict(id='export-out-indices-twice', tool=EXPORT,
         argv=['--out-indices', '5', '-6', '--out', '{out}/i.onnx'], status=2,
         error='argument --out-indices: [5, -6] names a layer twice'),
    dict(id='export-arch-with-config', tool=EXPORT,
         argv=RETINA + ['--arch', '1.3x', '--out', '{out}/i.onnx'] + RETINA_OPTS, status=2,
         error='argument --arch: not allowed with --config'),
    dict(id='export-out-indices-with-classifier', tool=EXPORT,
         argv=['--classifier', '--out-indices', '5', '--out', '{out}/i.onnx'], status=2,
         error='argument --out-indices: only for a backbone export'),
    dict(id='export-export-size-huge', tool=EXPORT,
         argv=BACKBONE[:4] + ['--export-size', '100000', '--out', '{out}/i.onnx'],
         status=2, error="argument --export-size: '100000' is not a size"),
    dict(id='fuse-dfc-blocks-out-of-range', tool=FUSE,
         argv=['{backbone.pth}', '{out}/f25.pth', '--dfc-blocks', '-5', '99'], status=2,
         error="argument --dfc-blocks: '-5' is not allowed: give an integer from 0 to 15"),
    dict(id='fuse-dfc-blocks-on-ghostnet-v1', tool=FUSE,
         argv=['{backbone.pth}', '{out}/f25.pth', '--type', 'GhostNet', '--dfc-blocks',
               '3'], status=2, error='argument --dfc-blocks: GhostNet has no DFC attention'),
    dict(id='fuse-dfc-kernel-even', tool=FUSE,
         argv=['{backbone.pth}', '{out}/f25.pth', '--dfc-kernel-size', '4'], status=2,
         error='argument --dfc-kernel-size: 4 is not allowed: give an odd size'),
    dict(id='dfc-arch-2.0x', tool=DFC, argv=['{photo.png}', '--arch', '2.0x'], status=2,
         error="argument --arch: invalid choice: '2.0x'", error_also="'1.0x', '1.3x'"),
    dict(id='dfc-blocks-not-numbers', tool=DFC, argv=['{photo.png}', '--blocks', 'x'],
         status=2, error="--blocks 'x': allowed 'last', 'all'"),
    dict(id='dfc-size-huge', tool=DFC, argv=['{photo.png}', '--size', '100000'], status=2,
         error="argument --size: '100000' is not allowed: give an integer from 1 to 8192"),
    dict(id='dfc-config-checkpoint-read-safely', tool=DFC,
         argv=['{photo.png}', '--config', DEEPLABV3, '--checkpoint', '{text.pth}',
               '--out', '{out}/dfc.png'], status=1, error='is not a PyTorch checkpoint',
         creates=['!out/dfc.png']),
    dict(id='quantize-size-huge', tool=QUANTIZE,
         argv=QUANT[:-1] + ['100000'], status=2,
         error="argument --size: '100000' is not allowed: give an integer from 1 to 4096"),
    dict(id='quantize-exclude-unknown-node', tool=QUANTIZE,
         argv=QUANT + ['--exclude-nodes', 'no_such_node'], status=2,
         error="argument --exclude-nodes: 'no_such_node' is no node of",
         creates=['!out/q25.onnx']),
    dict(id='quantize-min-matched-above-1', tool=QUANTIZE,
         argv=QUANT + ['--min-matched', '1.5'], status=2,
         error="argument --min-matched: '1.5' is not allowed: give a number from 0",
         creates=['!out/q25.onnx']),
    dict(id='quantize-min-score-0', tool=QUANTIZE,
         argv=QUANT + ['--min-score', '0'], status=2,
         error="argument --min-score: '0' is not allowed: give a number from 0 (excluded)",
         creates=['!out/q25.onnx']),
    dict(id='quantize-min-matched-nan', tool=QUANTIZE,
         argv=QUANT + ['--min-matched', 'nan'], status=2,
         error=f"argument --min-matched: 'nan' {NOT_FINITE}"),
    # a whole detector (told by its metadata) is judged by matching detections; a
    # check that judged none fails
    dict(id='quantize-detector-nothing-compared-fails', tool=QUANTIZE,
         argv=['{retina.onnx}', '{out}/qr.onnx', '--calib-dir', '{calib}', '--size', '64',
               '--num-images', '2', '--min-score', '1'], status=1,
         stdout=['detections matched', 'nothing compared', 'FAILED', 'not written'],
         creates=['!out/qr.onnx']),
    dict(id='profile-plot-without-top1', tool=PROFILE,
         argv=['--onnx', 'ours={backbone.onnx}', '--plot', '{out}/p.png'], status=2,
         error='argument --plot: nothing to plot: no model has a top-1'),
    dict(id='profile-top1-of-no-model', tool=PROFILE,
         argv=['--onnx', 'ours={backbone.onnx}', '--top1', 'theirs=75'], status=2,
         error="argument --top1: 'theirs' is no --onnx label; allowed: ours"),
    dict(id='profile-runs-0-disables-the-breakdown', tool=PROFILE,
         argv=['--onnx', 'ours={backbone.onnx}', '--sizes', '32', '--rounds', '1',
               '--warmup', '0', '--profile-runs', '0'], status=0,
         stdout=['| ours |'], stdout_not=['kernel time']),
    dict(id='benchmark-baseline-nonsense', tool=BENCH, argv=['--baseline', 'nonsense'],
         status=2, error="argument --baseline: invalid choice: 'nonsense'"),
    dict(id='benchmark-baseline-not-timed', tool=BENCH,
         argv=['--models', 'ghostnetv2', '--baseline', 'resnet18'], status=2,
         error="argument --baseline: 'resnet18' is not timed; allowed: one of --models"),
    dict(id='benchmark-sizes-huge', tool=BENCH, argv=['--sizes', '100000'], status=2,
         error="argument --sizes: '100000' is not a size"),
    dict(id='benchmark-throughput-batch-0-skips-it', tool=BENCH,
         argv=['--models', 'ghostnetv2', '--sizes', '32', '--repeats', '1', '--warmup',
               '0', '--throughput-batch', '0', '--no-memory', '--threads', '1'], status=0,
         stdout=['ghostnetv2'], stdout_not=['img/s']),
    # ------------------------- 5: images that can be read are drawn or refused so
    dict(id='demo-segmentor-one-pixel-image', tool=DEMO,
         argv=['{flat.png}', DEEPLABV3, '{deeplab.pth}', '--out-dir', '{out}/demo_flat']
         + options(DEEPLABV3_OPTIONS), status=0, stdout=['saved 1 picture'],
         creates=['out/demo_flat/flat.png']),
    dict(id='infer-segmentor-one-pixel-image', tool=INFER,
         argv=[DEEPLABV3, '{deeplab.onnx}', '{flat.png}', '--out-file', '{out}/d1.png'],
         status=0, stdout=['pixels per class'], creates=['out/d1.png']),
    dict(id='demo-elongated-image-is-named-as-an-image', tool=DEMO,
         argv=['{wide.png}', YOLOV3, '{retina.pth}', '--out-dir', '{out}/demo_wide'],
         status=1, error="image '{wide.png}' (10000x10 pixels) is an image, but the "
         "config's test pipeline cannot prepare it; its aspect ratio is too extreme",
         creates=['!out/demo_wide']),
    dict(id='infer-elongated-image-works-where-the-pipeline-can', tool=INFER,
         argv=[RETINANET, '{retina.onnx}', '{wide.png}', '--out-file', '{out}/w.png'],
         status=0, stdout=['detections'], creates=['out/w.png']),
    dict(id='transfer-missing-weights-file', tool=TRANSFER,
         argv=['--backbones', 'ghostnetv2-1.0x', '--out', '{out}/tr_w', '--weights',
               'ghostnetv2-1.0x={out}/nope.pth'], status=2,
         error="--weights 'ghostnetv2-1.0x={out}/nope.pth': no such file",
         creates=['!out/tr_w']),
    # ------------------------------- 5: a foreign or damaged results.csv is named
    dict(id='transfer-foreign-results-csv', tool=TRANSFER,
         argv=['--backbones', 'ghostnetv2-1.0x', '--out', '{foreign_csv}'], status=1,
         error="{foreign_csv}/results.csv has the columns", error_also='missing: dataset'),
    dict(id='transfer-binary-results-csv', tool=TRANSFER,
         argv=['--backbones', 'ghostnetv2-1.0x', '--out', '{binary_csv}'], status=1,
         error="{binary_csv}/results.csv is not a CSV table of results"),
    dict(id='transfer-early-error-leaves-no-folder', tool=TRANSFER,
         argv=['--backbones', 'ghostnetv2-1.0x', '--out', '{out}/tr_new', '--datasets',
               'no_such_dataset'], status=1, error="unknown dataset 'no_such_dataset'",
         creates=['!out/tr_new']),
    dict(id='downstream-foreign-results-csv', tool=DOWNSTREAM,
         argv=[TINY_TRAIN, '--backbones', 'ghostnetv2-1.0x', '--out', '{foreign_csv}'],
         status=1, error="{foreign_csv}/results.csv has the columns",
         error_also='missing: config'),
    dict(id='downstream-cfg-options-misspelt-leaves-no-folder', tool=DOWNSTREAM,
         argv=[TINY_TRAIN, '--backbones', 'ghostnetv2-1.0x', '--out', '{out}/ds_new']
         + MISSPELT, status=2, error="'modle' is not in the config",
         creates=['!out/ds_new']),
]


def _make_issue25_inputs(w, path):
    """The inputs of the issue 25 items 4-5 cases (``path(name)`` registers one)."""
    os.makedirs(path('foreign_csv'))
    with open(os.path.join(w['foreign_csv'], 'results.csv'), 'w') as f:
        f.write('name,score\nsomething,1\n')  # another program's table
    Image.new('RGB', (10000, 10), (90, 140, 200)).save(path('wide.png'))
    os.makedirs(path('binary_csv'))
    with open(os.path.join(w['binary_csv'], 'results.csv'), 'wb') as f:
        f.write(bytes(range(256)) * 4)  # no UTF-8 text at all


def test_finite_float_refuses_every_non_finite_spelling():
    import argparse

    from ghostnetv2_mm.utils.cli import (finite_float, float_in, non_negative_float,
                                         positive_float)
    for parse in (finite_float, float_in(-1e9, 1e9), non_negative_float, positive_float):
        for text in ('nan', 'NaN', '-nan', 'inf', '-inf', 'Infinity', '+inf', '1e999'):
            with pytest.raises(argparse.ArgumentTypeError, match='give a finite number'):
                parse(text)
        with pytest.raises(argparse.ArgumentTypeError, match='is not a number'):
            parse('abc')
    assert finite_float('-2.5') == -2.5 and finite_float('1e3') == 1000.0
    assert float_in(0, 1)('0') == 0 and float_in(0, 1)('1') == 1
    for text in ('-0.01', '1.01'):
        with pytest.raises(argparse.ArgumentTypeError, match='from 0 .* to 1'):
            float_in(0, 1)(text)
    with pytest.raises(argparse.ArgumentTypeError, match='>= 0'):
        non_negative_float('-1')
    assert non_negative_float('0') == 0
    with pytest.raises(argparse.ArgumentTypeError, match='> 0'):
        positive_float('0')


def test_every_float_option_of_every_tool_refuses_nan():
    """No tool parses a float option with plain ``float`` (which takes 'nan')."""
    import re
    plain = []
    for folder in ('tools', 'ghostnetv2_mm'):
        for d, _, files in os.walk(os.path.join(ROOT, folder)):
            for name in files:
                if name.endswith('.py'):
                    with open(os.path.join(d, name)) as f:
                        text = f.read()
                    if re.search(r'add_argument\([^)]*type=float\b', text, re.S):
                        plain.append(os.path.relpath(os.path.join(d, name), ROOT))
    assert plain == []


def test_image_size_and_side_have_a_limit():
    import argparse

    from ghostnetv2_mm.utils.cli import MAX_IMAGE_SIDE, image_side, image_size
    assert image_size(f'{MAX_IMAGE_SIDE}x1') == (MAX_IMAGE_SIDE, 1)
    assert image_side(str(MAX_IMAGE_SIDE)) == MAX_IMAGE_SIDE
    with pytest.raises(argparse.ArgumentTypeError, match='not a size'):
        image_size(f'{MAX_IMAGE_SIDE + 1}')
    with pytest.raises(argparse.ArgumentTypeError, match='not allowed'):
        image_side(f'{MAX_IMAGE_SIDE + 1}')


def test_cfg_options_first_part_must_be_in_the_config():
    from mmengine.config import Config

    from ghostnetv2_mm.utils.cli import UserError
    from ghostnetv2_mm.utils.toolkit import merge_cfg_options
    cfg = Config(dict(model=dict(backbone=dict(arch='1.0x')), train_cfg=dict(max_iters=2)))
    # new deeper keys and settings the Runner reads are fine
    merge_cfg_options(cfg, {'model.backbone.arch': '1.3x', 'model.backbone.frozen_stages': 1,
                            'randomness.seed': 3, 'load_from': None})
    assert cfg.model.backbone.arch == '1.3x' and cfg.randomness.seed == 3
    for key in ('modle.backbone.arch', 'train_cgf.max_iters', 'nonsense'):
        with pytest.raises(UserError, match=f"'{key.split('.')[0]}' is not in the config") \
                as info:
            merge_cfg_options(cfg, {key: 1})
        assert info.value.status == 2
    assert 'modle' not in cfg and 'train_cgf' not in cfg  # nothing merged


def test_read_rows_names_the_file_of_a_damaged_table(tmp_path):
    from ghostnetv2_mm.benchmarks.report import read_rows
    from ghostnetv2_mm.utils.cli import UserError
    path = tmp_path / 'results.csv'
    path.write_text('a,b\n1,2\n')
    assert read_rows(str(path), ['a', 'b']) == [{'a': '1', 'b': '2'}]
    with pytest.raises(UserError, match=r"results.csv has the columns a, b.*missing: c"):
        read_rows(str(path), ['a', 'b', 'c'])
    path.write_text('a,b\n1,2,3\n')
    with pytest.raises(UserError, match='results.csv line 2: 3 cells where the header has 2'):
        read_rows(str(path))
    path.write_text('a,b\n1\n')
    with pytest.raises(UserError, match='line 2: 1 cells'):
        read_rows(str(path))
    path.write_bytes(b'\xff\xfe\x00a,b')
    with pytest.raises(UserError, match='results.csv is not a CSV table'):
        read_rows(str(path))
    path.write_text('')
    assert read_rows(str(path), ['a']) == []


@pytest.mark.parametrize('loss', [float('nan'), float('inf'), float('-inf')])
def test_a_downstream_run_whose_loss_went_non_finite_fails(loss):
    from types import SimpleNamespace

    from ghostnetv2_mm.benchmarks.downstream.run import BenchmarkError, FiniteLossHook
    hook, runner = FiniteLossHook('cfg / ghostnetv2 / seed 0'), SimpleNamespace(iter=6)
    hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(2.5)})
    with pytest.raises(BenchmarkError, match=f'cfg / ghostnetv2 / seed 0: the training '
                       f'loss is {loss} at iteration 7; the run failed'):
        hook.after_train_iter(runner, 0, outputs={'loss': torch.tensor(loss)})


def test_get_model_of_ours_reads_a_bad_local_file_in_the_projects_words(world):
    import mmpretrain

    import ghostnetv2_mm  # noqa: F401 - registers the hub models
    from ghostnetv2_mm.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="'.*text.pth'.*is not a PyTorch checkpoint"):
        mmpretrain.get_model('ghostnetv2-1.0x_8xb128_in1k', pretrained=world['text.pth'])
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        mmpretrain.get_model('ghostnetv2-1.0x_8xb128_in1k',
                             pretrained=world['text.pth'] + '.missing')


def test_get_model_of_other_models_is_mmpretrains_own(world):
    """The plugin rule: another model's get_model is mmpretrain's function unchanged
    (the same error as the unwrapped function, whatever torch makes of a text file)."""
    import mmpretrain

    import ghostnetv2_mm  # noqa: F401

    def outcome(get_model):
        try:
            get_model('resnet18_8xb32_in1k', pretrained=world['text.pth'])
        except Exception as exc:  # noqa: BLE001 - whatever it is, both must agree
            return type(exc), str(exc)
        return None

    original = mmpretrain.get_model.__wrapped__
    assert original.__module__ == 'mmpretrain.apis.model'
    assert outcome(mmpretrain.get_model) == outcome(original) is not None
# ======================================================== issue 25 items 4-5 (end)


# ------------------------------------------------------------------------- inputs
def sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(root):
    # regular files only: reading a FIFO of the issue 25 cases would block
    return {os.path.relpath(os.path.join(d, f), root): sha(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files
            if os.path.isfile(os.path.join(d, f))}


def _export_file(config, opts, ckpt, path, task):
    from mmengine.config import Config

    from ghostnetv2_mm.deployment import build_model, export_onnx, wrap_for_export
    from ghostnetv2_mm.deployment.export import export_metadata
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(opts)
    wrapper = wrap_for_export(build_model(cfg, ckpt))
    export_onnx(wrapper, path, (64, 64),
                metadata=export_metadata(cfg, os.path.basename(config), task))


def _make_world(root, toy_root):
    from torchvision.models import resnet18

    from ghostnetv2_mm.deployment import BackboneExport, export_onnx, prepare_for_export
    from ghostnetv2_mm.deployment.export import export_metadata
    from ghostnetv2_mm.models import GhostNetV2
    w = {'root': root}

    def path(name):
        w[name] = os.path.join(root, name)
        return w[name]

    os.makedirs(path('out'))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path('photo.png'))
    Image.new('RGB', (1, 1), (120, 120, 120)).save(path('flat.png'))
    os.makedirs(path('calib'))
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
            os.path.join(w['calib'], f'c{i}.png'))
    os.makedirs(path('pngs'))
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
        os.path.join(w['pngs'], 'input.png'))
    os.makedirs(path('broken_dir'))
    with open(os.path.join(w['broken_dir'], 'broken.jpg'), 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 this is no JPEG')
    open(path('empty.png'), 'wb').close()
    with open(path('text.pth'), 'w') as f:
        f.write('hello\n')
    with open(path('bad.onnx'), 'wb') as f:
        f.write(b'not an onnx model')
    torch.save(resnet18().state_dict(), path('resnet18.pth'))
    _random_checkpoint(RETINANET, RETINANET_OPTIONS, path('retina.pth'))
    _random_checkpoint(DEEPLABV3, DEEPLABV3_OPTIONS, path('deeplab.pth'))  # no 'meta'
    with open(w['retina.pth'], 'rb') as f:
        data = f.read()
    with open(path('truncated.pth'), 'wb') as f:
        f.write(data[:len(data) // 2])
    backbone = randomise_bn(GhostNetV2('1.0x', out_indices=(5,))).eval()
    torch.save({'state_dict': backbone.state_dict()}, path('backbone.pth'))
    export_onnx(BackboneExport(prepare_for_export(backbone)), path('backbone.onnx'), (32, 32),
                metadata=export_metadata(None, 'GhostNetV2 1.0x backbone', 'backbone'))
    _export_file(RETINANET, RETINANET_OPTIONS, w['retina.pth'], path('retina.onnx'),
                 'detection')
    _export_file(DEEPLABV3, DEEPLABV3_OPTIONS, w['deeplab.pth'], path('deeplab.onnx'),
                 'segmentation')
    for name in ('old_a.onnx', 'old_b.onnx', 'old_c.onnx', 'old_d.onnx', 'old_e.onnx'):
        with open(path(name), 'wb') as f:  # a user's file, precious
            f.write(name.encode() * 100)
    marker = os.path.join(root, 'eval.ran')
    torch.save({'state_dict': {}, 'meta': eval_payload(marker)}, path('eval.pth'))
    _make_issue25_files(w, toy_root)
    _make_issue25_inputs(w, path)
    w['data_options'] = [f'train_dataloader.dataset.data_root={toy_root}/',
                         f'test_dataloader.dataset.data_root={toy_root}/',
                         f'test_evaluator.ann_file={toy_root}/annotations/'
                         'instances_validation.json']
    return w


def _make_issue25_files(w, toy_root):
    """Issue 25 item 3: FIFOs where outputs go, inputs named as derived outputs."""
    import shutil
    root = w['root']

    def path(name):
        w[name] = os.path.join(root, name)
        return w[name]

    os.mkfifo(path('fifo.onnx'))
    os.makedirs(path('fifodir'))
    os.mkfifo(os.path.join(w['fifodir'], 'photo.png'))  # demo's picture of photo.png
    os.mkfifo(os.path.join(w['fifodir'], 'results.md'))  # a benchmark report
    shutil.copy(w['backbone.pth'], path('bb.failed.pth'))
    shutil.copy(w['backbone.pth'], path('ck.failed.onnx'))  # (only its name matters)
    shutil.copy(w['backbone.onnx'], path('q.failed.onnx'))
    os.makedirs(path('peers'))
    shutil.copy(w['backbone.onnx'], os.path.join(w['peers'], 'mobilenetv3-large.onnx'))
    os.makedirs(path('transfer'))  # weights a user keeps under a report's name
    shutil.copy(w['backbone.pth'], os.path.join(w['transfer'], 'results.md'))
    os.makedirs(path('cats'))
    rng = np.random.default_rng(1)
    for name in ('cat.jpg', 'cat.bmp'):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            os.path.join(w['cats'], name))
    os.makedirs(path('cfgdir'))
    shutil.copy(TINY_TRAIN, os.path.join(w['cfgdir'], 'tiny.py'))
    w['toy'] = toy_root


@pytest.fixture(scope='module')
def world(tmp_path_factory, toy_root):
    return _make_world(str(tmp_path_factory.mktemp('tool_safety')), toy_root.rstrip('/'))


def expand(text, w):
    if text == '{data_options}':
        return list(w['data_options'])
    for key, value in w.items():
        if isinstance(value, str):
            text = text.replace('{' + key + '}', value)
    return [text]


def argv_of(case, w):
    return [part for arg in case['argv'] for part in expand(arg, w)]


_RUNS = {}


def run_tool_batch(tool, w):
    """Run every case of ``tool`` in one process; (results, hashes before, after)."""
    def make():
        cases = [c for c in CASES if c['tool'] == tool]
        before = snapshot(w['root'])
        spec = os.path.join(w['root'], f'cases_{len(_RUNS)}.json')
        results = spec.replace('cases_', 'results_')
        with open(spec, 'w') as f:
            json.dump([dict(id=c['id'], tool=os.path.join(ROOT, tool),
                            argv=argv_of(c, w)) for c in cases], f)
        proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'tool_batch.py'),
                               spec, results], cwd=ROOT, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(results) as f:
            out = json.load(f)
        after = snapshot(w['root'])
        return out, before, after
    return once(_RUNS, tool, make)


@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])
def test_tool_case(case, world):
    results, before, after = run_tool_batch(case['tool'], world)
    result = results[case['id']]
    report = f"stdout:\n{result['stdout'][-2000:]}\nstderr:\n{result['stderr'][-3000:]}"
    assert result['status'] == case['status'], report
    assert 'Traceback' not in result['stderr'], report
    errors = [l for l in result['stderr'].splitlines() if l.startswith('error:')]
    if case.get('error'):
        assert len(errors) == 1, report  # one line
        for fragment in (case['error'], case.get('error_also', '')):
            assert expand(fragment, world)[0] in errors[0], report
    else:
        assert errors == [], report
    for fragment in case.get('stdout', []):
        assert fragment in result['stdout'], report
    for fragment in case.get('stdout_not', []):
        assert fragment not in result['stdout'], report
    if case.get('names'):
        assert any(name in result['stdout'] for name in case['names']), report
        assert 'class ' not in result['stdout'], report
    # no pre-existing file named on the command line changed, unless replaced on purpose
    root = world['root']
    for arg in argv_of(case, world):
        rel = os.path.relpath(arg, root) if os.path.isabs(arg) else None
        if rel in before and rel not in case.get('replaces', []):
            assert after.get(rel) == before[rel], f'{rel} changed or vanished'
    for rel in case.get('replaces', []):
        assert after[rel] != before[rel]
    for rel in case.get('creates', []):
        if rel.startswith('!'):
            assert not os.path.exists(os.path.join(root, rel[1:])), rel
        else:
            assert os.path.isfile(os.path.join(root, rel)), rel
    # no partial (temporary) file anywhere
    assert [f for f in after if '.tmp-' in f] == []


def test_no_pre_existing_file_changed_but_the_replaced_ones(world):
    """Across all the batches: every file that existed before is unchanged, except
    the ones a case replaces on purpose."""
    for tool in sorted({c['tool'] for c in CASES}):
        _, before, after = run_tool_batch(tool, world)
        replaced = {r for c in CASES if c['tool'] == tool for r in c.get('replaces', [])}
        changed = {f for f in before if after.get(f) != before[f]}
        assert changed <= replaced, (tool, changed - replaced)


def test_the_replaced_onnx_file_is_whole_and_records_its_origin(world):
    import onnx
    run_tool_batch(EXPORT, world)
    model = onnx.load(world['old_d.onnx'])
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta['ghostnetv2_mm.source'] == 'GhostNetV2 1.0x backbone'


def test_an_exported_detector_records_normalisation_and_class_names(world):
    from ghostnetv2_mm.deployment.export import read_onnx_metadata
    meta = read_onnx_metadata(world['retina.onnx'])
    assert meta['ghostnetv2_mm.source'] == 'retinanet_ghostnetv2_coco.py'
    norm = json.loads(meta['ghostnetv2_mm.normalisation'])
    assert norm['mean'] == [123.675, 116.28, 103.53] and norm['to_rgb'] is True
    assert json.loads(meta['ghostnetv2_mm.classes'])[:2] == ['person', 'bicycle']
    assert 'pad_size_divisor' in json.loads(meta['ghostnetv2_mm.input'])


# ------------------------------------------------- issue 25 item 3: no file lost
def test_dev_null_is_still_a_character_device(world):
    """After every case that named /dev/null as an output (as root, a rename over
    it would have replaced the device with a regular file)."""
    import stat
    for tool in sorted({c['tool'] for c in ISSUE25_FILES
                        if '/dev/null' in c['argv']}):
        run_tool_batch(tool, world)
    assert stat.S_ISCHR(os.stat('/dev/null').st_mode)


def test_atomic_output_never_renames_over_a_fifo_that_appeared_meanwhile(tmp_path):
    import stat

    from ghostnetv2_mm.utils.cli import UserError
    from ghostnetv2_mm.utils.fileio import atomic_output
    target = tmp_path / 'out.txt'
    with pytest.raises(UserError, match='is a FIFO'):
        with atomic_output(target) as out:
            with open(out.path, 'w') as f:
                f.write('result')
            os.mkfifo(target)  # made by someone else while the tool worked
    assert stat.S_ISFIFO(os.stat(target).st_mode)
    assert os.listdir(tmp_path) == ['out.txt']  # and the temporary file is gone


def test_atomic_output_refuses_a_device_before_any_work(tmp_path):
    """A private copy of the null device (root only): never /dev itself, so that a
    broken guard cannot harm the machine."""
    import stat

    from ghostnetv2_mm.utils.cli import UserError
    from ghostnetv2_mm.utils.fileio import atomic_output
    device = tmp_path / 'null'
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip('making a device needs root')
    for keep_failed in (False, True):
        with pytest.raises(UserError, match='is a character device'):
            with atomic_output(device, keep_failed=keep_failed):
                raise AssertionError('the block must not run')
    assert stat.S_ISCHR(os.stat(device).st_mode)
    assert os.listdir(tmp_path) == ['null']


def test_the_text_writer_of_reports_refuses_a_fifo(tmp_path):
    from ghostnetv2_mm.utils.cli import UserError
    from ghostnetv2_mm.utils.fileio import atomic_write_text
    os.mkfifo(tmp_path / 'results.md')
    with pytest.raises(UserError, match='is a FIFO'):
        atomic_write_text('table', str(tmp_path / 'results.md'))
    assert os.listdir(tmp_path) == ['results.md']


def _dump_world(tmp_path, text):
    """A work dir holding ``cfg.py`` with ``text`` and one earlier run's log."""
    from mmengine.config import Config
    config = tmp_path / 'configs' / 'cfg.py'
    config.parent.mkdir()
    config.write_text('a = 1\n')
    cfg = Config.fromfile(str(config))
    cfg.work_dir = str(tmp_path / 'work')
    run = tmp_path / 'work' / '20260101_120000'
    run.mkdir(parents=True)
    (run / '20260101_120000.log').write_text(
        '2026/01/01 12:00:00 - mmengine - INFO - Config:\nwork_dir = x\na = 1\n\n'
        '2026/01/01 12:00:01 - mmengine - INFO - Hooks ...\n')
    (tmp_path / 'work' / 'cfg.py').write_text(text)
    return cfg


def test_the_config_dump_may_replace_an_earlier_runs_dump(tmp_path):
    from ghostnetv2_mm.preflight import check_config_dump
    assert check_config_dump(_dump_world(tmp_path, 'work_dir = x\na = 1\n')) is None


@pytest.mark.parametrize('text', ['a = 2\n', '', 'a = 1\n', 'work_dir = x\na = 1\nb = 3\n'])
def test_the_config_dump_may_not_replace_another_file(tmp_path, text):
    from ghostnetv2_mm.preflight import check_config_dump
    problem = check_config_dump(_dump_world(tmp_path, text))
    assert problem and 'no earlier run\'s dump' in problem and 'cfg.py' in problem


def test_the_config_dump_may_not_replace_the_config_itself(tmp_path):
    from ghostnetv2_mm.preflight import check_config_dump
    cfg = _dump_world(tmp_path, 'a = 1\n')
    cfg.work_dir = str(tmp_path / 'configs')
    assert 'replacing the config itself' in check_config_dump(cfg)


# -------------------------------------------------------------------------- SIGTERM
def test_sigterm_during_the_export_leaves_the_existing_file_intact(world, tmp_path):
    import onnx
    target = tmp_path / 'model.onnx'
    with open(world['backbone.onnx'], 'rb') as f:
        target.write_bytes(f.read())
    old = sha(target)
    cmd = [sys.executable, os.path.join(ROOT, EXPORT), '--arch', '1.0x', '--out-indices',
           '5', '--export-size', '64', '--check-sizes', '64', '96', '128', '160',
           '--out', str(target)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 300
    # the tool writes beside the target: kill it once that has begun
    while not any('.tmp-' in f for f in os.listdir(tmp_path)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stdout + stderr
    assert 'error: terminated (SIGTERM)' in stderr and 'Traceback' not in stderr
    assert sha(target) == old
    onnx.checker.check_model(onnx.load(str(target)))
    assert os.listdir(tmp_path) == ['model.onnx']  # no partial file


# ----------------------------------------------------------------------------- ties
def _detections():
    expected = dict(bboxes=torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50.]]),
                    scores=torch.tensor([0.9, 0.5, 0.5]), labels=torch.tensor([1, 2, 2]))
    # onnxruntime kept the first box and, of the equally scored ones of class 2, the
    # second and another box (60..70) instead of the third: which one of equal scores
    # survives NMS and the top k follows float rounding
    dets = np.array([[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.5 + 6e-8],
                     [60, 60, 70, 70, 0.5], [0, 0, 0, 0, 0]], np.float32)
    return expected, dets, np.array([1, 2, 2, -1])


def test_an_equally_scored_box_kept_instead_is_a_tie_not_a_mismatch():
    from ghostnetv2_mm.deployment.verify import pair_detections, tie_partners
    expected, dets, labels = _detections()
    partners, _ = pair_detections(expected, dets, labels)
    assert partners == [0, 1, -1]
    assert tie_partners(expected, partners, dets, labels) == [-1, -1, 2]


@pytest.mark.parametrize('change', ['score', 'label'])
def test_a_box_of_another_score_or_label_is_no_tie(change):
    from ghostnetv2_mm.deployment.verify import pair_detections, tie_partners
    expected, dets, labels = _detections()
    if change == 'score':
        dets[2, 4] = 0.499  # beyond float rounding
    else:
        labels[2] = 1
    partners, _ = pair_detections(expected, dets, labels)
    assert tie_partners(expected, partners, dets, labels) == [-1, -1, -1]


def test_a_check_that_compared_nothing_fails_with_the_hint():
    from ghostnetv2_mm.deployment.verify import summarise
    rows = [dict(size=(64, 64), matched=0, tied=0, expected=0, onnx_rows=0,
                 max_score_diff=0.0, ok=True)]
    ok, line = summarise(rows)
    assert not ok and 'nothing was compared' in line and '--check-images' in line
    assert summarise([dict(rows[0], matched=3, expected=3)]) == (True, 'PASSED')
