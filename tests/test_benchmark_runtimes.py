"""The benchmark's runtimes (``ghostnetv2_mm.benchmarks.runtimes``): an exported
backbone converted with pnnx runs on ncnn with the outputs onnxruntime gives, in
every storage precision; the interleaved timing and the tool's summary table run on
ncnn at a tiny size. No timing assertions. Skipped where ncnn / pnnx are missing."""
import fnmatch
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ghostnetv2_mm.benchmarks.onnx_profile import random_input, session, time_interleaved
from ghostnetv2_mm.benchmarks.runtimes import (NCNN_PRECISIONS, check_runtime, make_runner,
                                               ncnn_blobs, ncnn_net, onnx_to_ncnn)
from ghostnetv2_mm.deployment import BackboneExport, export_onnx
from ghostnetv2_mm.models import GhostNetV2

from helpers import ROOT, randomise_bn

ncnn = pytest.importorskip('ncnn')
pytest.importorskip('pnnx')

SIZE = (64, 96)


@pytest.fixture(scope='module')
def backbone_file(tmp_path_factory):
    """GhostNetV2 1.0x to layer 7 (random BN statistics), exported at 64x96."""
    torch.manual_seed(0)
    model = randomise_bn(GhostNetV2('1.0x', out_indices=(7,))).eval()
    model.switch_to_deploy(channels_last=False)
    path = str(tmp_path_factory.mktemp('rt') / 'bb.onnx')
    export_onnx(BackboneExport(model), path, SIZE)
    return path


@pytest.mark.numerics
def test_pnnx_conversion_runs_on_ncnn_like_onnxruntime(tmp_path, backbone_file):
    before = set(os.listdir(os.path.dirname(backbone_file)))
    param, weights = onnx_to_ncnn(backbone_file, str(tmp_path / 'out' / 'bb'), SIZE)
    assert (param, weights) == (str(tmp_path / 'out' / 'bb.param'),
                                str(tmp_path / 'out' / 'bb.bin'))
    # pnnx's side files stay in its temporary folder, none beside the ONNX file
    assert set(os.listdir(os.path.dirname(backbone_file))) == before
    assert sorted(os.listdir(tmp_path / 'out')) == ['bb.bin', 'bb.param']
    inputs, outputs = ncnn_blobs(param)
    assert len(inputs) == 1 and len(outputs) == 1
    x = random_input(SIZE)
    (expected,) = session(backbone_file).run(None, {'input': x})
    scale = max(1.0, float(np.abs(expected).max()))
    for precision, tolerance in (('fp32', 1e-4), ('fp16', 5e-2), ('bf16', 1e-1)):
        (got,) = make_runner('ncnn', backbone_file, x, precision=precision,
                             workdir=str(tmp_path))()
        assert got.shape == expected.shape, precision
        assert np.abs(got - expected).max() / scale < tolerance, precision
    # the precisions are the ncnn options set on the net
    for precision, flags in NCNN_PRECISIONS.items():
        net = ncnn_net(param, weights, precision=precision)
        assert {flag: getattr(net.opt, flag) for flag in flags} == flags
    assert NCNN_PRECISIONS['fp32']['use_fp16_storage'] is False
    assert NCNN_PRECISIONS['fp16']['use_fp16_storage'] is True
    assert NCNN_PRECISIONS['bf16']['use_bf16_storage'] is True
    with pytest.raises(ValueError, match='one'):
        make_runner('ncnn', backbone_file, random_input(SIZE, batch=2),
                    workdir=str(tmp_path))()


def test_time_interleaved_on_ncnn_and_bad_settings(tmp_path, backbone_file):
    times = time_interleaved({'a': backbone_file, 'b': backbone_file}, size=SIZE,
                             rounds=2, warmup=1, runtime='ncnn', precision='fp16',
                             clock='thread', workdir=str(tmp_path))
    assert [len(t) for t in times.values()] == [2, 2] and min(min(times.values())) > 0
    # one conversion of the file for both labels, named by the file and the size
    (param,) = [f for f in os.listdir(tmp_path) if f.endswith('.param')]
    assert fnmatch.fnmatch(param, 'bb.*.64x96.ncnn.param')
    # a file of the same name elsewhere is converted on its own
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'bb.onnx').write_bytes(open(backbone_file, 'rb').read())
    time_interleaved({'c': str(other / 'bb.onnx')}, size=SIZE, rounds=1, warmup=0,
                     runtime='ncnn', workdir=str(tmp_path))
    assert len([f for f in os.listdir(tmp_path) if f.endswith('.param')]) == 2
    with pytest.raises(ValueError, match="precision='fp16' on onnxruntime"):
        check_runtime('onnxruntime', 'fp16')
    with pytest.raises(ValueError, match="runtime='tflite'"):
        check_runtime('tflite')
    with pytest.raises(ValueError, match='magic'):
        ncnn_blobs(backbone_file)
    assert set(NCNN_PRECISIONS) == {'fp32', 'fp16', 'bf16'}


def test_onnx_profile_tool_times_ncnn_precisions(tmp_path, backbone_file):
    tool = [sys.executable, 'tools/analysis/onnx_profile.py', '--onnx',
            f'ours={backbone_file}', f'again={backbone_file}', '--runtimes', 'ncnn',
            'onnxruntime', '--precisions', 'fp32', 'bf16', '--sizes', '64', '--rounds',
            '2', '--warmup', '1', '--profile-runs', '1', '--workdir', str(tmp_path)]
    result = subprocess.run(tool, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for setting in ('ncnn fp32, 1 thread(s)', 'ncnn bf16, 1 thread(s)',
                    'onnxruntime fp32, 1 thread(s)'):
        assert setting in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith('| model'))
    assert header.count('64x64') == 3
    refused = subprocess.run(tool + ['--batch', '2'], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode == 2 and 'ncnn runs batch 1 only' in refused.stderr
