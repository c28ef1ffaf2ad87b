"""ncnn: tools/deployment/export_ncnn.py (backbone, classifier, DeepLabV3, RetinaNet,
YOLOv3, SSDLite exported and checked with ncnn against PyTorch; Mask R-CNN refused),
tools/deployment/ncnn_infer.py (the detections tools/demo.py draws; the sidecar check)
and bad input. The tool runs share one Python process (tests/tool_batch.py), in order:
the exports first, then the runs that read their files. Small inputs (64x64), random
weights; no timing assertions."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, once, randomise_bn

import ncnn  # noqa: F401,E402  (required test dependencies, no skip)
import pnnx  # noqa: F401,E402

from helpers import DEEPLABV3, DEEPLABV3_OPTIONS  # noqa: E402
from helpers import random_checkpoint as _random_checkpoint  # noqa: E402

from ghostnetv2_mm.utils.cli import UserError  # noqa: E402

EXPORT, INFER, DEMO = (os.path.join(ROOT, 'tools', n) for n in (
    'deployment/export_ncnn.py', 'deployment/ncnn_infer.py', 'demo.py'))
TINY = os.path.join(ROOT, 'tests', 'configs', 'retinanet_ghostnetv2_toyshapes_tiny.py')
MASK_RCNN = os.path.join(ROOT, 'configs', 'mask-rcnn_ghostnetv2_coco.py')
SMALL_HEAD = ['model.backbone.init_cfg=None', 'model.bbox_head.num_classes=3']
SIZE = ['--input-size', '64', '64']


def _cases(w):
    """(id, tool, argv) in the order they run."""
    image = w['image']
    return [
        # --- exports (each checked by the tool against PyTorch)
        ('backbone', EXPORT, ['--arch', '1.0x', '--out-indices', '5', '9', '--checkpoint',
                              w['backbone_ckpt'], *SIZE, '--out', w['backbone']]),
        ('classifier', EXPORT, ['--classifier', *SIZE, '--out', w['classifier']]),
        ('deeplabv3', EXPORT, ['--config', DEEPLABV3, *SIZE, '--out', w['deeplab'],
                               '--cfg-options', *w['deeplab_options']]),
        ('retinanet', EXPORT, ['--config', TINY, '--checkpoint', w['tiny_ckpt'], *SIZE,
                               '--out', w['tiny'], '--check-images', w['images']]),
        ('yolov3', EXPORT, ['--config', os.path.join(ROOT, 'configs',
                                                     'yolov3_ghostnetv2_320_coco.py'),
                            *SIZE, '--out', w['yolo'], '--cfg-options', *SMALL_HEAD]),
        ('ssdlite', EXPORT, ['--config', os.path.join(ROOT, 'configs',
                                                      'ssdlite_ghostnetv2_coco.py'),
                             *SIZE, '--out', w['ssd'], '--cfg-options', *SMALL_HEAD]),
        # nothing above score_thr: the check compares nothing and fails; the old
        # files stay, the rejected ones are kept apart
        ('failed-check', EXPORT, ['--config', TINY, '--checkpoint', w['tiny_ckpt'], *SIZE,
                                  '--out', w['old'], '--keep-failed', '--cfg-options',
                                  'model.test_cfg.score_thr=1.0']),
        ('mask-rcnn', EXPORT, ['--config', MASK_RCNN, *SIZE, '--out', w['nothing']]),
        ('image-larger-than-input', EXPORT, ['--config', TINY, '--input-size', '32', '32',
                                             '--out', w['nothing'], '--check-images', image]),
        ('out-with-extension', EXPORT, ['--classifier', *SIZE,
                                        '--out', w['nothing'] + '.param']),
        # the check would fail and keep its files as PREFIX.failed.*, one of which is a
        # folder: refused before the export
        ('kept-name-is-a-folder', EXPORT, ['--config', TINY, '--checkpoint', w['tiny_ckpt'],
                                           *SIZE, '--out', w['nothing'], '--keep-failed',
                                           '--cfg-options', 'model.test_cfg.score_thr=1.0']),
        # --- runs of the exported files
        ('infer', INFER, [TINY, w['tiny'], image, '--out-dir', w['vis'], '--score-thr', '0']),
        ('demo', DEMO, [image, TINY, w['tiny_ckpt'], '--out-dir', w['demo'],
                        '--score-thr', '0']),
        ('infer-other-normalisation', INFER, [w['other_config'], w['tiny'], image,
                                              '--out-file', w['drawing']]),
        ('infer-missing-bin', INFER, [TINY, w['nobin'], image, '--out-file', w['drawing']]),
        ('infer-foreign-param', INFER, [TINY, w['foreign'], image,
                                        '--out-file', w['drawing']]),
        # DeepLabV3's test pipeline makes a 64x64 image 512x512; the file runs at 64x64
        ('infer-size-not-made-for', INFER, [DEEPLABV3, w['deeplab'], image,
                                            '--out-file', w['drawing']]),
    ]


def _link(prefix, sources):
    """PREFIX.ext -> the file of another export (made later by the batch)."""
    for ext, target in sources.items():
        os.symlink(f'{target}.{ext}', f'{prefix}.{ext}')


def _world(tmp, toy_root):
    w = {key: str(tmp / key) for key in ('backbone', 'classifier', 'deeplab', 'tiny',
                                         'yolo', 'ssd', 'old', 'nothing', 'vis', 'demo',
                                         'nobin', 'foreign')}
    w['images'] = os.path.join(toy_root, 'images', 'validation')
    w['image'] = os.path.join(w['images'], sorted(os.listdir(w['images']))[0])
    w['drawing'] = str(tmp / 'drawing.png')
    w['tiny_ckpt'] = _random_checkpoint(TINY, {}, tmp / 'tiny.pth')
    from ghostnetv2_mm.checkpoint import save_checkpoint_file
    from ghostnetv2_mm.models import GhostNetV2
    torch.manual_seed(0)
    backbone = randomise_bn(GhostNetV2('1.0x', out_indices=(5, 9)))
    w['backbone_ckpt'] = str(tmp / 'backbone.pth')
    save_checkpoint_file({'state_dict': backbone.state_dict()}, w['backbone_ckpt'])
    w['deeplab_options'] = [f'{k}={v}' for k, v in DEEPLABV3_OPTIONS.items()]
    # the tiny config with another normalisation
    w['other_config'] = str(tmp / 'other_normalisation.py')
    with open(w['other_config'], 'w') as f:
        f.write(f'_base_ = [{TINY!r}]\nmodel = dict(data_preprocessor=dict('
                'mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0]))\n')
    for ext in ('param', 'bin', 'json'):
        with open(f"{w['old']}.{ext}", 'w') as f:
            f.write(f'old {ext}\n')
    os.mkdir(f"{w['nothing']}.failed.bin")
    _link(w['nobin'], {'param': w['tiny'], 'json': w['tiny']})
    _link(w['foreign'], {'param': w['backbone'], 'bin': w['tiny'], 'json': w['tiny']})
    return w


_RUNS = {}


@pytest.fixture(scope='module')
def batch(tmp_path_factory, toy_root):
    """(world, results): every case of ``_cases`` run once, in one process."""
    def make():
        tmp = tmp_path_factory.mktemp('ncnn')
        w = _world(tmp, toy_root)
        spec, out = str(tmp / 'cases.json'), str(tmp / 'results.json')
        with open(spec, 'w') as f:
            json.dump([dict(id=i, tool=tool, argv=argv) for i, tool, argv in _cases(w)], f)
        proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'tool_batch.py'),
                               spec, out], cwd=ROOT, capture_output=True, text=True,
                              timeout=1200)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(out) as f:
            return w, json.load(f)
    return once(_RUNS, 'batch', make)


def _result(batch, case, status=0):
    result = batch[1][case]
    report = f"stdout:\n{result['stdout'][-2500:]}\nstderr:\n{result['stderr'][-2500:]}"
    assert result['status'] == status, report
    assert 'Traceback' not in result['stderr'], report
    return result


def _error_line(result):
    lines = [line for line in result['stderr'].splitlines() if line.startswith('error:')]
    assert len(lines) == 1, result['stderr'][-2000:]
    return lines[0]


def _files(prefix):
    return [f'{prefix}.{ext}' for ext in ('param', 'bin', 'json')]


@pytest.mark.numerics
@pytest.mark.parametrize('case', ['backbone', 'classifier'])
def test_backbone_and_classifier_export_and_match_pytorch(batch, case):
    out = _result(batch, case)['stdout']
    # (a classifier's row also counts top-1 near-ties: 'max abs diff D; top-1 ... OK')
    diffs = [float(d) for d in re.findall(r'max abs diff ([^;\s]+)[^\n]* OK', out)]
    assert len(diffs) == 2 and max(diffs) < 1e-4, out  # two random inputs, 64x64
    assert 'PASSED' in out
    prefix = batch[0][case]
    assert all(os.path.getsize(p) > 0 for p in _files(prefix))
    with open(prefix + '.json') as f:
        sidecar = json.load(f)
    assert sidecar['input_blob'] == dict(name='in0', shape=[1, 3, 64, 64],
                                         note=sidecar['input_blob']['note'])
    names = ['layer5', 'layer9'] if case == 'backbone' else ['logits']
    assert [o['name'] for o in sidecar['outputs']] == names
    assert [o['blob'] for o in sidecar['outputs']] == [f'out{i}' for i in range(len(names))]


@pytest.mark.numerics
def test_deeplabv3_exports_and_its_class_map_matches_predict(batch):
    out = _result(batch, 'deeplabv3')['stdout']
    identical = [float(v) for v in re.findall(r'([\d.]+)% identical pixels[^\n]* OK', out)]
    assert len(identical) == 2 and min(identical) >= 99.9, out
    with open(batch[0]['deeplab'] + '.json') as f:
        sidecar = json.load(f)
    assert sidecar['task'] == 'segmentation' and len(sidecar['classes']) == 150
    assert sidecar['normalisation']['mean'] == [123.675, 116.28, 103.53]


@pytest.mark.numerics
@pytest.mark.parametrize('case,checked', [('retinanet', 2), ('yolov3', 2), ('ssdlite', 2)])
def test_single_stage_detectors_export_and_their_detections_match_predict(batch, case,
                                                                          checked):
    out = _result(batch, case)['stdout']
    # PyTorch's 20 best of each input have their ncnn twins (same label, IoU > 0.99,
    # score within 1e-3) after the project's post-processing of the ncnn outputs
    counts = re.findall(r'(\d+)/(\d+) top detections matched', out)
    assert len(counts) == checked, out
    assert all(int(m) == int(e) == 20 for m, e in counts), out
    assert 'PASSED' in out
    route = 'onnx graph code' if case == 'retinanet' else 'predict_by_feat'
    assert f'decoded in Python ({route})' in out


def test_a_failed_check_keeps_the_old_files_and_the_rejected_ones_apart(batch):
    result = _result(batch, 'failed-check', status=1)
    assert 'FAILED: nothing was compared' in result['stdout']
    old = batch[0]['old']
    for path in _files(old):
        with open(path) as f:
            assert f.read() == f'old {os.path.splitext(path)[1][1:]}\n'
    assert all(os.path.getsize(f'{old}.failed.{ext}') > 0 for ext in ('param', 'bin', 'json'))


BAD_INPUT = [
    ('mask-rcnn', 1, 'MaskRCNN: ncnn cannot run two-stage detectors'),
    ('image-larger-than-input', 1, "is 64x64 after the config's test pipeline, larger than "
     "the ncnn file's fixed input 32x32"),
    ('out-with-extension', 2, 'give the PREFIX without an extension'),
    ('kept-name-is-a-folder', 2, "nothing.failed.bin': is a folder, expected a file name"),
    ('infer-other-normalisation', 1, 'normalisation: the file has'),
    ('infer-missing-bin', 1, "nobin.bin': no such file"),
    ('infer-foreign-param', 1, "foreign.param' is not the file"),
    ('infer-size-not-made-for', 1, "is 512x512 after the config's test pipeline, larger "
     "than the ncnn file's fixed input 64x64"),
]


@pytest.mark.parametrize('case,status,message', BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_refused_in_one_line(batch, case, status, message):
    line = _error_line(_result(batch, case, status))
    assert message in line, line
    w = batch[0]
    assert not any(os.path.exists(p) for p in _files(w['nothing']) + [w['drawing']])


def _listed(stdout):
    """(label, score, box) of each detection ncnn_infer prints."""
    found = []
    for line in stdout.splitlines():
        m = re.match(r'\s+(\w+) score ([\d.]+) box ([\d. -]+)$', line)
        if m:
            found.append((m[1], float(m[2]), [float(v) for v in m[3].split()]))
    return found


@pytest.mark.numerics
def test_ncnn_infer_draws_the_detections_demo_draws(batch):
    # tools/demo.py's model and predict (mmdet's inference_detector) on the image
    import importlib.util

    import mmcv
    from mmengine.config import Config
    w, _ = batch
    infer = _result(batch, 'infer')
    _result(batch, 'demo')
    spec = importlib.util.spec_from_file_location('_demo_tool', DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    cfg = Config.fromfile(TINY)
    _, model, predict, _ = demo.build(cfg, w['tiny_ckpt'], 'cpu')
    ref = predict(model, w['image']).pred_instances
    classes = cfg.metainfo['classes']
    listed = _listed(infer['stdout'])
    assert len(listed) == len(ref) == 20  # max_per_img of the tiny config
    # each of demo's 10 best is in ncnn_infer's list (printed to 3 / 1 decimals)
    order = ref.scores.argsort(descending=True)[:10]
    for i in order.tolist():
        label, score = classes[int(ref.labels[i])], float(ref.scores[i])
        box = ref.bboxes[i].tolist()
        assert any(name == label and abs(s - score) <= 1.5e-3
                   and max(abs(a - b) for a, b in zip(b_, box)) <= 0.06
                   for name, s, b_ in listed), (label, score, box)
    # and the drawing is demo's drawing
    name = os.path.splitext(os.path.basename(w['image']))[0] + '.png'
    ours, theirs = (mmcv.imread(os.path.join(w[d], name)) for d in ('vis', 'demo'))
    assert ours.shape == theirs.shape == mmcv.imread(w['image']).shape
    assert (ours == theirs).all(axis=-1).mean() >= 0.99


# --------------------------------------------------------------- library, in process
def test_runner_refuses_a_size_the_file_was_not_made_for(batch):
    from ghostnetv2_mm.deployment.ncnn import NcnnRunner
    runner = NcnnRunner.from_prefix(batch[0]['classifier'])
    assert runner.run(torch.zeros(2, 3, 64, 64))[0].shape == (2, 1000)
    with pytest.raises(UserError, match=r'input of shape 1x3x64x96: this ncnn file runs at '
                       r'Nx3x64x64 only'):
        runner.run(torch.zeros(1, 3, 64, 96))


def test_runner_refuses_a_file_that_is_not_an_ncnn_param(batch, tmp_path):
    from ghostnetv2_mm.deployment.ncnn import NcnnRunner
    param = tmp_path / 'x.param'
    param.write_text('{"not": "ncnn"}\n')
    with open(batch[0]['classifier'] + '.json') as f:
        sidecar = json.load(f)
    with pytest.raises(UserError, match='is not an ncnn .param file'):
        NcnnRunner(str(param), batch[0]['classifier'] + '.bin',
                   sidecar['input_blob']['shape'], sidecar['outputs'])


def test_missing_packages_are_named_with_how_to_install(monkeypatch):
    from ghostnetv2_mm.deployment.ncnn import require
    for package in ('pnnx', 'ncnn'):
        monkeypatch.setitem(sys.modules, package, None)  # import fails
        with pytest.raises(UserError, match=f"package '{package}'.*pip install pnnx ncnn"):
            require(package)


def test_class_map_is_the_argmax_the_onnx_graph_ends_with():
    from ghostnetv2_mm.deployment.ncnn import class_map
    logits = np.random.default_rng(0).normal(size=(2, 5, 7, 9)).astype(np.float32)
    got = class_map(logits)
    assert got.shape == (2, 1, 7, 9) and got.dtype == np.int64
    assert (got[:, 0] == logits.argmax(axis=1)).all()
    one = class_map(logits[:, :1], threshold=0.5)
    assert ((one == 1) == (logits[:, :1] > 0)).all()


def test_prepared_images_are_padded_at_the_bottom_right_with_zeros():
    # as the toolkits' preprocessors pad a batch (after normalisation)
    from ghostnetv2_mm.deployment.ncnn import pad_to_input
    batch = torch.rand(1, 3, 40, 50) + 1
    padded = pad_to_input(batch, (64, 56))
    assert padded.shape == (1, 3, 64, 56)
    assert torch.equal(padded[..., :40, :50], batch)
    assert (padded[..., 40:, :] == 0).all() and (padded[..., :, 50:] == 0).all()
    assert pad_to_input(batch, (40, 50)) is batch
    with pytest.raises(UserError, match='is 40x50 after .* larger than the ncnn file\'s '
                       'fixed input 39x64'):
        pad_to_input(batch, (39, 64))
