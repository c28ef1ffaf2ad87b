"""The exported deploy graph: what it is made of (node counts by op type, so that a
change bringing back shape arithmetic or the SE's Gemm fails) and that each of its
export forms computes what the eval-mode network computes, on onnxruntime, at even and
odd sizes with batch 2; the fixed-shape export; the onnxruntime profiling helpers. No
timing assertions."""
import copy
from collections import Counter
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ghostnetv2_mm.benchmarks.onnx_profile import (CONV_OPS, export_timm_peer,
                                                   node_counts, op_breakdown,
                                                   ratio_to, session, time_interleaved)
from ghostnetv2_mm.deployment import BackboneExport, export_onnx, run_onnx
from ghostnetv2_mm.models import GhostNet, GhostNetV2, GhostNetV3
from ghostnetv2_mm.models.blocks import DFCAttention, RepConvModule, SqueezeExcite

from helpers import ROOT, randomise_bn

TAPS = (3, 5, 7, 9, 10)
# Even maps everywhere (64x96), odd ones (65x77, 7x9: the stride-32 maps of a 224
# input are 7x7), and sides whose last maps are 1 pixel (33x17).
SIZES = [(64, 96), (65, 77), (225, 289), (33, 17)]


def _export(model, path, size=(64, 64), dynamic=True, batch=1):
    """A deployed, NCHW copy of the eval-mode ``model`` exported to ``path``."""
    deployed = copy.deepcopy(model).switch_to_deploy(channels_last=False)
    export_onnx(BackboneExport(deployed), str(path), size, batch=batch, dynamic=dynamic)
    return str(path)


def _max_diff(expected, got):
    """The largest difference, relative to each output's largest magnitude when that
    is above 1 (random BatchNorm statistics let GhostNetV3's summed branches grow
    activations to 1e9, where float32 rounding alone is 1e2)."""
    assert [tuple(e.shape) for e in expected] == [g.shape for g in got]
    return max(float(np.abs(e.numpy() - g).max() / max(1.0, e.abs().max().item()))
               for e, g in zip(expected, got))


@pytest.fixture(scope='module')
def v2_file(tmp_path_factory):
    torch.manual_seed(0)
    model = randomise_bn(GhostNetV2('1.0x', out_indices=TAPS)).eval()
    return model, _export(model, tmp_path_factory.mktemp('v2') / 'v2.onnx')


def test_exported_backbone_has_no_shape_arithmetic_gemm_or_casts(v2_file):
    model, path = v2_file
    counts = node_counts(path)
    dfc = sum(isinstance(m, DFCAttention) for m in model.modules())
    se = sum(isinstance(m, SqueezeExcite) for m in model.modules())
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert dfc == 14 and se == 7
    # the trunk's convs, SE's included: the SE runs as 1x1 convs, not Flatten + Gemm
    assert counts['Conv'] == convs
    for op in ('Gemm', 'MatMul', 'Flatten', 'Reshape', 'Slice', 'Gather', 'Unsqueeze',
               'ConstantOfShape', 'Pad', 'Cast', 'Mod', 'Sub', 'Div', 'Clip', 'Transpose',
               'Expand'):
        assert counts[op] == 0, (op, counts)
    # each DFC: one AveragePool, one Resize sized by one Shape (of the ghost output)
    assert counts['AveragePool'] == counts['Resize'] == counts['Shape'] == dfc
    assert counts['ReduceMean'] == counts['HardSigmoid'] == se
    assert counts['Mul'] == dfc + se  # the two gates
    # the ghost modules' concatenations, two per bottleneck, and nothing else
    assert counts['Concat'] == 2 * 16


def _tame_branches(model):
    """Scale GhostNetV3's branch BatchNorms by 1 / (number of summed branches): with
    random statistics, five summed branches per conv make activations grow to 1e9
    by the last stage, where the eval and the folded network (PyTorch alone) already
    differ by 10% from float rounding."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RepConvModule):
                norms = [b.norm for b in module.branches]
                norms += [module.scale.norm] if module.scale is not None else []
                norms += [module.skip] if module.skip is not None else []
                for norm in norms:
                    norm.weight.div_(len(norms))
    return model


@pytest.mark.numerics
@pytest.mark.parametrize('cls', [GhostNet, GhostNetV2, GhostNetV3])
def test_onnx_export_equals_the_eval_mode_network(tmp_path, cls):
    """Every export form (SE as convs, the one-node DFC pooling, the resize sized by
    the ghost output) against the network in eval mode, before any folding."""
    model = _tame_branches(randomise_bn(cls('1.0x', out_indices=TAPS))).eval()
    sess = session(_export(model, tmp_path / 'm.onnx'))
    gen = torch.Generator().manual_seed(1)
    for size in SIZES:
        x = torch.randn(2, 3, *size, generator=gen)
        with torch.no_grad():
            expected = model(x)
        assert _max_diff(expected, run_onnx(sess, x)) < 1e-4, size


@pytest.mark.numerics
def test_static_shape_export_is_fixed_and_equals_the_eval_mode_network(tmp_path):
    model = randomise_bn(GhostNetV2('1.0x', out_indices=TAPS)).eval()
    path = _export(model, tmp_path / 'static.onnx', size=(65, 77), dynamic=False, batch=2)
    sess = session(path)
    assert sess.get_inputs()[0].shape == [2, 3, 65, 77]
    x = torch.randn(2, 3, 65, 77)
    with torch.no_grad():
        expected = model(x)
    assert _max_diff(expected, run_onnx(sess, x)) < 1e-4
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        run_onnx(sess, torch.randn(2, 3, 64, 77))


def test_export_tool_static_shape(tmp_path):
    out = tmp_path / 'bb.onnx'
    tool = [sys.executable, 'tools/deployment/export_onnx.py', '--out-indices', '5',
            '--out', str(out)]
    result = subprocess.run(tool + ['--static-shape', '48', '80', '--no-pad-channels'],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'static input 1x3x48x80' in result.stdout and '48x80' in result.stdout
    assert 'PASSED' in result.stdout
    assert session(str(out)).get_inputs()[0].shape == [1, 3, 48, 80]
    # --no-pad-channels: the ghost concatenations as traced
    assert _conv_shapes_around(str(out), '/backbone/layer1/layer1.0/ghost1/Concat') == (
        [8, 8], [16])
    # a fixed-size file cannot be checked at another size: refused before exporting
    refused = subprocess.run(tool + ['--static-shape', '48', '80', '--check-sizes', '64'],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and '--check-sizes' in refused.stderr


def test_op_breakdown_splits_conv_from_the_rest(v2_file):
    _, path = v2_file
    breakdown = op_breakdown(path, size=(64, 64), runs=2, warmup=1)
    ops = breakdown['ops']
    assert set(ops) & CONV_OPS and 'Resize' in ops and 'Mul' in ops
    assert breakdown['conv_ms'] == pytest.approx(
        sum(v['ms'] for op, v in ops.items() if op in CONV_OPS))
    assert breakdown['total_ms'] == pytest.approx(breakdown['conv_ms'] + breakdown['other_ms'])
    assert 0 < breakdown['other_fraction'] < 1
    # every node of the file runs (onnxruntime fuses the ReLUs into the convs and
    # drops the Identity nodes) and is counted once
    assert ops['Resize']['nodes'] == node_counts(path)['Resize']
    # per node the least of its times over the runs: the same nodes, counted once
    fastest = op_breakdown(path, size=(64, 64), runs=3, warmup=1, statistic='min')
    assert {op: v['nodes'] for op, v in fastest['ops'].items()} == {
        op: v['nodes'] for op, v in ops.items()}
    assert fastest['total_ms'] > 0
    with pytest.raises(ValueError, match="statistic='median'"):
        op_breakdown(path, size=(64, 64), runs=1, statistic='median')


def test_timm_peer_exports_with_dynamic_axes_and_times_interleaved(tmp_path, v2_file):
    path = export_timm_peer('mobilenetv3_small_050', str(tmp_path / 'peer.onnx'),
                            size=(64, 64))
    sess = session(path)
    assert sess.get_inputs()[0].name == 'input'
    assert [isinstance(d, str) for d in sess.get_inputs()[0].shape] == [True, False, True,
                                                                       True]
    (out,) = sess.run(None, {'input': np.zeros((2, 3, 96, 64), np.float32)})
    assert out.shape[0] == 2
    times = time_interleaved({'ours': v2_file[1], 'peer': path}, size=(64, 64), rounds=3,
                             warmup=1, clock='thread')
    assert [len(t) for t in times.values()] == [3, 3] and min(min(times.values())) > 0
    assert ratio_to(times, 'ours')['ours'] == 1.0
    with pytest.raises(ValueError, match='clock'):
        time_interleaved({'ours': v2_file[1]}, clock='thread', threads=2)
    with pytest.raises(ValueError, match='not a timm model'):
        export_timm_peer('no_such_model', str(tmp_path / 'x.onnx'))
    assert not os.path.exists(tmp_path / 'x.onnx')


def _conv_shapes_around(path, concat_name):
    """Output channels of the two convs feeding ``concat_name`` and input channels
    of the dense conv(s) behind it (through depthwise convs), from the file."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def weight(node):
        name = node.input[1]
        while name not in weights:
            name = producer[name].input[0]
        return weights[name]

    def conv_behind(name):
        node = producer[name]
        return producer[node.input[0]] if node.op_type == 'Relu' else node

    concat = next(n for n in graph.node if n.name == concat_name)
    halves = [weight(conv_behind(i)).shape[0] for i in concat.input]
    dense, frontier = [], [concat.output[0]]
    while frontier:
        name = frontier.pop()
        for node in graph.node:
            if name in node.input and node.op_type == 'Conv':
                w = weight(node)
                if w.shape[1] == 1 and w.shape[0] > 1:  # depthwise: look behind it
                    frontier.append(node.output[0])
                else:
                    dense.append(w.shape[1])
    return halves, dense


def test_ghost_concats_feeding_convs_are_padded_to_16_channels(tmp_path, v2_file):
    """The ghost concatenations that feed only convs (layer1.0 and layer2.0's
    ghost1: 8 + 8 and 24 + 24 channels) get both halves zero-padded to 16 / 32, and
    their consumers read the padded layout; every other concatenation (DFC-gated,
    residual) keeps its channels. Outputs: equal (the eval-mode comparisons above
    run on the padded export, V1 / V2 / V3)."""
    model, padded = v2_file
    plain = str(tmp_path / 'plain.onnx')
    deployed = copy.deepcopy(model).switch_to_deploy(channels_last=False)
    export_onnx(BackboneExport(deployed), plain, (64, 64), pad_channels=None)
    first = '/backbone/layer1/layer1.0/ghost1/Concat'
    second = '/backbone/layer2/layer2.0/ghost1/Concat'
    assert _conv_shapes_around(plain, first) == ([8, 8], [16])
    assert _conv_shapes_around(padded, first) == ([16, 16], [32])
    # layer2.0: through the stride-2 depthwise conv to ghost2's primary conv
    assert _conv_shapes_around(plain, second) == ([24, 24], [48])
    assert _conv_shapes_around(padded, second) == ([32, 32], [64])
    gated = '/backbone/layer3/layer3.0/ghost1/Concat'
    assert _conv_shapes_around(padded, gated)[0] == [36, 36]
    residual = '/backbone/layer1/layer1.0/ghost2/Concat'
    assert _conv_shapes_around(padded, residual)[0] == [8, 8]
    # the same nodes (the Identity nodes that shared replaced weights may go)
    assert (node_counts(padded) - Counter(Identity=10 ** 6)
            == node_counts(plain) - Counter(Identity=10 ** 6))
    # the same outputs, up to the summation order of the convs' GEMMs
    x = torch.randn(2, 3, 48, 80, generator=torch.Generator().manual_seed(0))
    assert _max_diff([torch.from_numpy(o) for o in run_onnx(session(plain), x)],
                     run_onnx(session(padded), x)) < 1e-5
