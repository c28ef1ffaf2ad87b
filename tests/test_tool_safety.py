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
from test_onnx_export import (DEEPLABV3, DEEPLABV3_OPTIONS, RETINANET, RETINANET_OPTIONS,
                              _random_checkpoint)
from test_safe_loading_attacks import eval_payload

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
    # (the flat 1x1 image, 800x800 after resizing; ties: see the tests below)
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


# ------------------------------------------------------------------------- inputs
def sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(root):
    return {os.path.relpath(os.path.join(d, f), root): sha(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files}


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
    w['data_options'] = [f'train_dataloader.dataset.data_root={toy_root}/',
                         f'test_dataloader.dataset.data_root={toy_root}/',
                         f'test_evaluator.ann_file={toy_root}/annotations/'
                         'instances_validation.json']
    return w


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
