"""INT8 placements of ``quantize_int8`` (onnxruntime) and the PT2E route: each one
writes the graph structure it names and stays close to float32 (tiny sizes)."""
import numpy as np
import pytest
import torch

from ghostnetv2_mm.models import GhostNetV2

from helpers import randomise_bn

import onnx  # noqa: E402  (required test dependencies, no skip)

from ghostnetv2_mm.deployment import (BackboneExport, export_onnx,  # noqa: E402
                                      onnx_session, quantize_int8, quantized_node_counts,
                                      run_onnx)
from ghostnetv2_mm.deployment.quantize import PLACEMENTS  # noqa: E402

# INT8 and float32 results of one network are compared throughout
pytestmark = pytest.mark.numerics

SIZE = 64


def _backbone():
    torch.manual_seed(0)
    backbone = randomise_bn(GhostNetV2('1.0x', out_indices=(5,))).eval()  # small: fast
    backbone.switch_to_deploy(channels_last=False)
    return backbone


@pytest.fixture(scope='module')
def fp32_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('int8') / 'fp32.onnx')
    export_onnx(BackboneExport(_backbone()), path, (SIZE, SIZE))
    return path


def _calibration():
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(4, 3, SIZE, SIZE, generator=gen).numpy() for _ in range(3)]


def _cosine(src, dst, x):
    (ref,) = run_onnx(onnx_session(src), x)
    (got,) = run_onnx(onnx_session(dst), x)
    assert got.shape == ref.shape
    return float((ref * got).sum() / np.sqrt((ref ** 2).sum() * (got ** 2).sum()))


def test_integer_placement_removes_the_float_islands(fp32_file, tmp_path):
    dst = str(tmp_path / 'int8.onnx')
    quantize_int8(fp32_file, dst, _calibration(), op_types=PLACEMENTS['integer'])
    counts = quantized_node_counts(dst)
    # the DFC gate (Sigmoid, Resize, Mul), the ghost Concat and the pooling read and
    # write uint8: onnxruntime runs them as QLinear* kernels, no float island between
    for op in ('Conv', 'Concat', 'Mul', 'Sigmoid', 'Resize', 'AveragePool', 'Add'):
        assert counts['int8'].get(op, 0) > 0, (op, counts)
        assert op not in counts['float'], (op, counts)
    assert _cosine(fp32_file, dst, _calibration()[0]) > 0.9


def test_float_prefixes_keep_the_stem_in_float(fp32_file, tmp_path):
    dst = str(tmp_path / 'int8.onnx')
    quantize_int8(fp32_file, dst, _calibration(), op_types=PLACEMENTS['integer'],
                  float_prefixes=('/backbone/layer0/',))
    graph = onnx.load(dst).graph
    produced_by = {o: n for n in graph.node for o in n.output}
    stem = [n for n in graph.node if n.name.startswith('/backbone/layer0/')
            and n.op_type == 'Conv']
    assert len(stem) == 1
    # a float conv reads float weights (no DequantizeLinear before it)
    assert all(getattr(produced_by.get(i), 'op_type', None) != 'DequantizeLinear'
               for i in stem[0].input)
    later = [n for n in graph.node if n.name.startswith('/backbone/layer1/')
             and n.op_type == 'Conv']
    assert later and all(produced_by[n.input[1]].op_type == 'DequantizeLinear'
                         for n in later)
    assert _cosine(fp32_file, dst, _calibration()[0]) > 0.9
    with pytest.raises(ValueError, match='float_prefixes'):
        quantize_int8(fp32_file, str(tmp_path / 'x.onnx'), _calibration(),
                      float_prefixes='/no/such/layer/')


def test_qoperator_format_writes_qlinear_nodes(fp32_file, tmp_path):
    dst = str(tmp_path / 'int8.onnx')
    quantize_int8(fp32_file, dst, _calibration(), op_types=PLACEMENTS['integer'],
                  quant_format='qoperator', per_channel=False)
    ops = {n.op_type for n in onnx.load(dst).graph.node}
    assert {'QLinearConv', 'QLinearConcat', 'QLinearMul'} <= ops, ops
    assert 'Conv' not in ops
    counts = quantized_node_counts(dst)
    assert counts['int8'].get('QLinearConv', 0) > 0 and 'QLinearConv' not in counts['float']
    assert _cosine(fp32_file, dst, _calibration()[0]) > 0.9
    with pytest.raises(ValueError, match='quant_format'):
        quantize_int8(fp32_file, str(tmp_path / 'x.onnx'), _calibration(),
                      quant_format='qop')


def test_pt2e_round_trip_quantises_every_conv():
    from ghostnetv2_mm.deployment.quantize import quantize_pt2e_x86
    model = BackboneExport(_backbone())
    calib = [torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(i))
             for i in range(4)]
    quantized = quantize_pt2e_x86(model, calib[0], calib)
    targets = [str(n.target) for n in quantized.graph.nodes if n.op == 'call_function']
    convs = sum(t == 'aten.conv2d.default' for t in targets)
    linears = sum(t == 'aten.linear.default' for t in targets)  # the SE's, under capture
    # every conv's and linear layer's weight is quantised per channel (the quantizer
    # found them all)
    assert convs > 0 and targets.count(
        'quantized_decomposed.dequantize_per_channel.default') == convs + linears
    with torch.no_grad():
        ref, got = model(calib[0])[0], quantized(calib[0])[0]
    cosine = float((ref * got).sum() / (ref.norm() * got.norm()))
    assert cosine > 0.9


def test_conv_kind_breakdown_splits_depthwise_from_dense(fp32_file, tmp_path):
    from ghostnetv2_mm.benchmarks.int8 import conv_kind_breakdown
    dst = str(tmp_path / 'int8.onnx')
    quantize_int8(fp32_file, dst, _calibration(), op_types=PLACEMENTS['integer'])
    for path in (fp32_file, dst):
        b = conv_kind_breakdown(path, size=SIZE, runs=2, warmup=1)
        # both kinds found, whatever onnxruntime renamed the fused convs to
        assert b['depthwise conv'] > 0 and b['dense conv'] > 0, b
        assert not any('Conv' in k for k in b), b
        assert abs(b['total'] - sum(v for k, v in b.items() if k != 'total')) < 1e-6
