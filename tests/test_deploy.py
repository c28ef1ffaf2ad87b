"""Deploy mode (BatchNorm folding), the fused-checkpoint converter, ONNX export and the
benchmark / FLOPs tools on tiny settings. No timing assertions."""
import copy
import os
import subprocess
import sys

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ghostnetv2_mm.checkpoint import (CheckpointMismatch, load_checkpoint_file,
                                      save_checkpoint_file)
from ghostnetv2_mm.models import GhostNetV2
from ghostnetv2_mm.models.blocks import multiply_by_gate
from ghostnetv2_mm.models.deploy import DeployConv2d

from helpers import ROOT, randomise_bn

OS8 = dict(strides=(1, 2, 1, 2, 1, 1, 1, 1, 1), dilations=(1, 1, 1, 1, 1, 2, 2, 4, 4))
OS16 = dict(strides=(1, 2, 1, 2, 1, 2, 1, 1, 1), dilations=(1, 1, 1, 1, 1, 1, 1, 2, 2))


def _pair(arch='1.0x', **kwargs):
    model = randomise_bn(GhostNetV2(arch, out_indices=tuple(range(11)), **kwargs)).eval()
    return model, copy.deepcopy(model).switch_to_deploy()


def _max_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


@pytest.mark.numerics
@pytest.mark.parametrize('arch,kwargs', [('1.0x', {}), ('1.3x', {}), ('1.6x', {}),
                                         ('1.0x', OS8), ('1.0x', OS16)],
                         ids=['1.0x', '1.3x', '1.6x', '1.0x-os8', '1.0x-os16'])
def test_deploy_equals_eval(arch, kwargs):
    model, deployed = _pair(arch, **kwargs)
    # even sizes (broadcast gate) and odd ones (F.interpolate)
    for size in [(64, 96)] + ([(65, 77)] if arch == '1.0x' else []):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():
            expected, got = model(x), deployed(x)
        assert [o.shape for o in got] == [o.shape for o in expected]
        assert _max_diff(got, expected) < 1e-4


def test_deploy_state_dict_has_no_batch_norm_and_keeps_the_outputs_api():
    model, deployed = _pair()
    assert not any(isinstance(m, _BatchNorm) for m in deployed.modules())
    keys = deployed.state_dict().keys()
    assert not any('running_' in k or 'num_batches' in k or '.bn.' in k for k in keys)
    assert isinstance(deployed.layer0, DeployConv2d) and deployed.layer0.relu
    assert deployed.out_channels == model.out_channels
    # idempotent; the deploy forward also works with autograd (no in-place on saved tensors)
    deployed.switch_to_deploy()
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    sum(o.sum() for o in deployed(x)).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_training_mode_structure_is_unchanged_by_the_deploy_code():
    model = randomise_bn(GhostNetV2('1.0x', out_indices=tuple(range(11))))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy.deepcopy(model).eval().switch_to_deploy()  # deploying a copy ...
    after = model.state_dict()
    # ... leaves the original's every tensor as it was
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    # and the training layout keeps one BatchNorm per conv, except the SE convs (which
    # have a bias instead)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    norms = sum(isinstance(m, _BatchNorm) for m in model.modules())
    se_convs = 2 * sum(type(m).__name__ == 'SqueezeExcite' for m in model.modules())
    assert se_convs > 0 and norms == convs - se_convs


def test_built_in_deploy_mode_loads_a_fused_state_dict():
    model, deployed = _pair()
    fresh = GhostNetV2('1.0x', out_indices=tuple(range(11)), deploy=True)
    fresh.load_state_dict(deployed.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert _max_diff(fresh(x), model(x)) < 1e-4


@pytest.mark.numerics
def test_gate_broadcast_equals_interpolate():
    torch.manual_seed(0)
    for (h, w) in [(8, 12), (7, 9), (8, 9), (2, 2), (1, 6)]:
        out = torch.randn(2, 3, h, w)
        gate = torch.rand(2, 3, max(1, h // 2), max(1, w // 2))
        expected = out * torch.nn.functional.interpolate(gate, size=(h, w), mode='nearest')
        for fmt in (torch.contiguous_format, torch.channels_last):
            o = out.clone().contiguous(memory_format=fmt)
            g = gate.contiguous(memory_format=fmt)
            torch.testing.assert_close(multiply_by_gate(o.clone(), g), expected,
                                       rtol=0, atol=0)
            with torch.no_grad():
                torch.testing.assert_close(multiply_by_gate(o.clone(), g), expected,
                                           rtol=0, atol=0)


def _run(args, timeout=300):
    result = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout


def test_fuse_checkpoint_round_trip(tmp_path):
    model = randomise_bn(GhostNetV2('1.0x', out_indices=(3, 5, 7, 9, 10))).eval()
    src, dst = tmp_path / 'full.pth', tmp_path / 'fused.pth'
    head = {'head.fc.weight': torch.randn(10, 1280), 'head.fc.bias': torch.randn(10)}
    save_checkpoint_file({'state_dict': {**{f'backbone.{k}': v for k, v in
                                            model.state_dict().items()}, **head}}, src)
    out = _run(['tools/deployment/fuse_checkpoint.py', str(src), str(dst), '--check-size', '64'])
    assert 'max abs diff' in out
    fused = load_checkpoint_file(dst)
    assert fused['meta']['deploy'] is True
    state = fused['state_dict']
    assert torch.equal(state['head.fc.weight'], head['head.fc.weight'])  # untouched
    assert not any('running_' in k for k in state)
    deployed = GhostNetV2('1.0x', out_indices=(3, 5, 7, 9, 10), deploy=True,
                          init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    deployed.init_weights()
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        assert _max_diff(deployed(x), model(x)) < 1e-4
    # an unfused checkpoint does not fit a deploy=True backbone: refused, none loaded
    unfused = GhostNetV2('1.0x', out_indices=(3, 5, 7, 9, 10), deploy=True,
                         init_cfg=dict(type='Pretrained', checkpoint=str(src)))
    before = {k: v.clone() for k, v in unfused.state_dict().items()}
    with pytest.raises(CheckpointMismatch, match='switch_to_deploy'):
        unfused.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in unfused.state_dict().items())


@pytest.mark.numerics
@pytest.mark.parametrize('classifier', [False, True], ids=['backbone', 'classifier'])
def test_onnx_export_matches_onnxruntime(tmp_path, classifier):
    from ghostnetv2_mm.deployment import (export_onnx, onnx_session, run_onnx,
                                          prepare_for_export, wrap_for_export)
    from ghostnetv2_mm.models import build_classifier
    model = (build_classifier('1.0x', num_classes=10) if classifier
             else GhostNetV2('1.0x', out_indices=(3, 5, 7, 9)))
    model = prepare_for_export(randomise_bn(model))
    wrapper = wrap_for_export(model)
    path = str(tmp_path / 'm.onnx')
    export_onnx(wrapper, path, (64, 64))
    session = onnx_session(path)
    for size in [(64, 64), (96, 128)]:
        x = torch.randn(2, 3, *size)
        with torch.no_grad():
            expected = wrapper(x)
        expected = expected if isinstance(expected, (list, tuple)) else [expected]
        got = run_onnx(session, x)
        assert len(got) == len(expected) == (1 if classifier else 4)
        for e, g in zip(expected, got):
            assert g.shape == tuple(e.shape)
            assert abs(g - e.numpy()).max() < 1e-4


def test_benchmark_and_get_flops_run_on_tiny_settings(tmp_path):
    import csv
    from ghostnetv2_mm.utils import count_macs
    csv_path = tmp_path / 'bench.csv'
    models = ['ghostnetv2', 'ghostnetv2-deploy', 'ghostnetv2-onnx']
    _run(['tools/analysis/benchmark.py', '--models', *models, '--baseline', 'ghostnetv2',
          '--sizes', '64', '--repeats', '2', '--warmup', '1', '--threads', '1',
          '--throughput-batch', '1', '--throughput-repeats', '1', '--out', str(csv_path)])
    rows = {r['model']: r for r in csv.DictReader(csv_path.open())}
    assert sorted(rows) == sorted(models)
    macs = count_macs(GhostNetV2('1.0x', out_indices=(3, 5, 7, 9, 10)),
                      torch.zeros(1, 3, 64, 64))[0]
    for name, row in rows.items():
        assert float(row['median_ms']) > 0 and float(row['throughput_img_s']) > 0
        # every backend runs the same network: the same MACs and compute bound
        assert float(row['gmacs']) == pytest.approx(macs / 1e9, rel=1e-9)
        assert float(row['bound_ms']) == pytest.approx(float(rows['ghostnetv2']['bound_ms']))
    assert float(rows['ghostnetv2']['ratio']) == 1.0  # the baseline against itself
    out = _run(['tools/analysis/get_flops.py', '--arch', '1.0x', '--shape', '64'])
    printed = next(line for line in out.splitlines() if line.strip().startswith('MACs:'))
    assert float(printed.split()[1]) == pytest.approx(
        count_macs(GhostNetV2('1.0x', out_indices=(10,)), torch.zeros(1, 3, 64, 64))[0]
        / 1e6, abs=0.05)  # the whole trunk, to the final 960-channel conv


def test_deploy_keeps_the_mac_count():
    from ghostnetv2_mm.utils import count_macs
    model, deployed = _pair()
    x = torch.randn(1, 3, 64, 64)
    # BN is not counted anyway; the SE convs are counted as Linear in deploy mode
    assert count_macs(deployed, x)[0] == count_macs(model, x)[0]


@pytest.mark.numerics
def test_folding_a_batch_norm_keeps_its_eps():
    """Where a channel's running variance is comparable to eps (1e-5), folding without
    eps would scale it by up to sqrt(2)."""
    from ghostnetv2_mm.models.conv_module import FastConvModule
    from ghostnetv2_mm.models.deploy import fuse_conv_module
    module = FastConvModule(4, 6, 3, padding=1, norm_cfg=dict(type='BN'), act_cfg=None).eval()
    module.bn.running_var.uniform_(1e-6, 1e-5)
    module.bn.running_mean.uniform_(-1, 1)
    x = torch.randn(2, 4, 7, 5)
    with torch.no_grad():
        expected = module(x)
        torch.testing.assert_close(fuse_conv_module(module)(x), expected,
                                   rtol=1e-5, atol=1e-5 * expected.abs().max().item())
