"""Static post-training INT8 quantisation of an exported ONNX file (onnxruntime, QDQ).

Weights are quantised per output channel (int8, symmetric), activations per tensor
(uint8, asymmetric) with ranges calibrated on sample inputs (min/max). Only the
operator types in ``op_types`` get quantize/dequantize pairs; everything else (by
default: the sigmoid gates of the DFC attention and the hard-sigmoid of SE, their
products, the nearest resizes, the residual adds and the pooling) stays float32, so
the gates stay exact and only the convolutions and linear layers run in INT8.
"""
import os
import tempfile
from typing import Iterable, List, Optional, Sequence

import numpy as np

from .export import METADATA_PREFIX, write_onnx_with_metadata

# Convolutions and linear layers: where the MACs are.
DEFAULT_OP_TYPES = ('Conv', 'Gemm', 'MatMul')

# Operator types onnxruntime (1.16+) runs on uint8 tensors, either as a QLinear*
# kernel (QLinearConcat, QLinearMul, QLinearAdd, QLinearSigmoid, QLinearAveragePool,
# QLinearGlobalAveragePool, ...) or as a type-agnostic kernel that reads and writes
# uint8 (Resize, MaxPool, Reshape, Transpose, ...). Quantising all of them removes
# the float islands (and their QuantizeLinear / DequantizeLinear pairs) between convs.
INTEGER_OP_TYPES = ('Conv', 'Gemm', 'MatMul', 'Add', 'Mul', 'Concat', 'Sigmoid',
                    'AveragePool', 'GlobalAveragePool', 'MaxPool', 'Resize', 'Relu',
                    'Clip', 'LeakyRelu', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze',
                    'Transpose', 'Split', 'Pad', 'Softmax')

#: Where INT8 runs: placement name -> operator types quantised.
#: ``convs``: only the MAC-heavy layers (the gates, resizes, adds and pooling stay
#: float32, each behind its own QuantizeLinear / DequantizeLinear pair);
#: ``integer``: every operator onnxruntime has a uint8 kernel for.
PLACEMENTS = {'convs': DEFAULT_OP_TYPES, 'integer': INTEGER_OP_TYPES}

#: Quantisation formats: ``qdq`` (QuantizeLinear / DequantizeLinear around float ops,
#: fused by onnxruntime at load time) or ``qoperator`` (QLinear* nodes written out).
FORMATS = ('qdq', 'qoperator')


class _Batches:
    """onnxruntime's CalibrationDataReader over an iterable of (N, 3, H, W) arrays."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]):
        self.input_name = input_name
        self.batches = iter(batches)

    def get_next(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def rewind(self):  # (newer onnxruntime versions call this; one pass is enough)
        pass


def quantize_int8(src: str, dst: str, calibration: Iterable[np.ndarray],
                  op_types: Sequence[str] = DEFAULT_OP_TYPES,
                  exclude_nodes: Optional[Sequence[str]] = None,
                  per_channel: bool = True, *, float_prefixes: Sequence[str] = (),
                  quant_format: str = 'qdq', weight_type: str = 'int8',
                  reduce_range: bool = False, symmetric: bool = False) -> None:
    """Write ``dst``: ``src`` with QDQ INT8 convolutions/linear layers.

    Args:
        src (str): Float32 ONNX file (e.g. from ``export_onnx``).
        dst (str): Output path (written atomically, with ``src``'s metadata).
        calibration (iterable of ndarray): Preprocessed input batches (N, 3, H, W),
            float32, as the model expects them; a few hundred images in all.
        op_types (sequence of str): ONNX operator types to quantise.
        exclude_nodes (sequence of str, optional): Node names to keep in float.
        per_channel (bool): Per-output-channel weight scales (depthwise convolutions
            lose much more accuracy with one scale per tensor).
        float_prefixes (sequence of str): Also keep in float every node whose name
            starts with one of these (e.g. ``'/backbone/layer0/'``: the stem); the
            names are those of ``src`` after onnxruntime's pre-processing, which
            keeps the exporter's ``/module/path/Op`` names.
        quant_format (str): ``'qdq'`` (default) or ``'qoperator'``.
        weight_type (str): ``'int8'`` (default; U8S8, the VNNI kernels) or
            ``'uint8'`` (U8U8).
        reduce_range (bool): 7-bit weights (avoids the saturation of the
            pre-VNNI AVX2 ``vpmaddubsw`` path; costs accuracy).
        symmetric (bool): Symmetric ranges for activations and weights (onnxruntime's
            ``ActivationSymmetric`` / ``WeightSymmetric``; activations become int8).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    if quant_format not in FORMATS:
        raise ValueError(f'quantize_int8: quant_format={quant_format!r}; allowed: '
                         + ', '.join(FORMATS))
    if weight_type not in ('int8', 'uint8'):
        raise ValueError(f'quantize_int8: weight_type={weight_type!r}; allowed: int8, uint8')
    if isinstance(float_prefixes, str):  # one prefix, not its characters
        float_prefixes = (float_prefixes,)
    source = onnx.load(src, load_external_data=False)
    unknown = unknown_nodes(src, exclude_nodes or [])
    if unknown:
        raise ValueError(f'exclude_nodes: {unknown} are no nodes of {src}')
    input_name = source.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        quantized = os.path.join(tmp, 'quantized.onnx')
        # shape inference + graph optimisation first, as onnxruntime recommends
        quant_pre_process(src, prepared, skip_symbolic_shape=True)
        exclude = list(exclude_nodes or [])
        if float_prefixes:
            names = [n.name for n in onnx.load(prepared).graph.node]
            matched = [n for n in names if n.startswith(tuple(float_prefixes))]
            if not matched:
                raise ValueError(f'quantize_int8: float_prefixes={list(float_prefixes)!r} '
                                 f'match no node of {src}; node names look like '
                                 f'{names[:3]!r}')
            exclude += matched
        symmetric_options = ({'ActivationSymmetric': True, 'WeightSymmetric': True}
                             if symmetric else {})
        quantize_static(prepared, quantized, _Batches(input_name, calibration),
                        quant_format=(QuantFormat.QDQ if quant_format == 'qdq'
                                      else QuantFormat.QOperator),
                        op_types_to_quantize=list(op_types), nodes_to_exclude=exclude,
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=(QuantType.QInt8 if weight_type == 'int8'
                                     else QuantType.QUInt8),
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options=symmetric_options)
        # what the float file records it was made from holds for this one too
        metadata = {p.key: p.value for p in source.metadata_props}
        metadata[METADATA_PREFIX + 'quantized'] = (
            f'int8 {quant_format.upper()} (onnxruntime, MinMax; op types: '
            f'{",".join(op_types)}; float: {len(exclude)} nodes)')
        with open(quantized, 'rb') as f:
            write_onnx_with_metadata(f.read(), dst, metadata)


def unknown_nodes(src: str, names: Sequence[str]) -> List[str]:
    """The ``names`` that are no node of the ONNX file ``src`` (onnxruntime's
    quantiser ignores a node name it does not find, so a misspelt exclusion would
    quantise that node without a word)."""
    import onnx
    graph = onnx.load(src, load_external_data=False).graph
    present = {node.name for node in graph.node}
    return [name for name in names if name not in present]


# Integer nodes of the QOperator format that are not named QLinear*.
_INTEGER_NODES = ('ConvInteger', 'MatMulInteger', 'QGemm', 'QAttention')


def quantized_node_counts(path: str) -> dict:
    """Operator counts of a QDQ file: ``{'int8': {...}, 'float': {...}}``. A node runs
    in INT8 when it reads a DequantizeLinear output and only QuantizeLinear nodes read
    its outputs (the pattern onnxruntime fuses into an integer kernel), or when it is
    an integer node of the QOperator format (``QLinear*``); every other compute node
    runs in float32."""
    import onnx
    graph = onnx.load(path, load_external_data=False).graph
    produced_by = {o: n for n in graph.node for o in n.output}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    counts = {'int8': {}, 'float': {}}
    for node in graph.node:
        if node.op_type in ('QuantizeLinear', 'DequantizeLinear', 'Constant'):
            continue
        reads_dq = any(getattr(produced_by.get(i), 'op_type', None) == 'DequantizeLinear'
                       for i in node.input)
        readers = [c for o in node.output for c in consumers.get(o, [])]
        writes_q = bool(readers) and all(c.op_type == 'QuantizeLinear' for c in readers)
        kind = 'int8' if reads_dq and writes_q else 'float'
        if node.op_type.startswith('QLinear') or node.op_type in _INTEGER_NODES:
            kind = 'int8'  # the QOperator format's integer nodes
        counts[kind][node.op_type] = counts[kind].get(node.op_type, 0) + 1
    return counts


# The default tolerance of :func:`int8_differences`: INT8 costs accuracy; a float
# output that moves by more than this fraction of its range is called out.
INT8_TOLERANCE = 0.1


def int8_differences(names: Sequence[str], reference: Sequence[np.ndarray],
                     quantized: Sequence[np.ndarray],
                     tolerance: float = INT8_TOLERANCE) -> List[dict]:
    """Judge each output of the INT8 file against the float file's on the same
    inputs: ``max_abs_diff``, ``range`` (of the float output) and ``ok`` when the
    difference is at most ``tolerance`` times that range (for integer outputs, such
    as labels: when at most that fraction of the elements differ)."""
    rows = []
    for name, ref, got in zip(names, reference, quantized):
        ref, got = np.asarray(ref), np.asarray(got)
        row = dict(name=name, shape_ok=ref.shape == got.shape)
        if not row['shape_ok']:
            row.update(ok=False, max_abs_diff=float('inf'), range=0.0, relative=float('inf'))
        elif np.issubdtype(ref.dtype, np.floating):
            diff = float(np.abs(ref.astype(np.float64) - got).max()) if ref.size else 0.0
            span = float(ref.max() - ref.min()) if ref.size else 0.0
            relative = diff / span if span > 0 else (0.0 if diff == 0 else float('inf'))
            row.update(max_abs_diff=diff, range=span, relative=relative,
                       ok=relative <= tolerance)
        else:
            differ = float((ref != got).mean()) if ref.size else 0.0
            row.update(max_abs_diff=float(np.abs(ref.astype(np.int64) - got).max())
                       if ref.size else 0.0, range=0.0, relative=differ,
                       ok=differ <= tolerance)
        rows.append(row)
    return rows


def quantize_pt2e_x86(module, example, calibration: Iterable):
    """PT2E static INT8 of ``module`` for x86 CPUs: ``torch.export`` at the example's
    fixed size, torchao's ``X86InductorQuantizer`` (uint8 activations per tensor,
    int8 weights per channel), ``prepare_pt2e``, calibration, ``convert_pt2e``.
    Run the result under ``torch.compile`` with ``torch._inductor.config.freezing``
    on: Inductor then lowers the quantize / dequantize patterns to oneDNN's int8
    convolutions (eagerly the result runs the float ops on fake-quantised values).

    Args:
        module (nn.Module): Float model in eval mode (deploy form).
        example (Tensor): One input (N, 3, H, W); the capture is specialised to
            its shape, so calibration batches and later inputs must have it too.
        calibration (iterable of Tensor): Inputs of the example's shape.

    Returns:
        torch.fx.GraphModule: the converted (quantised) module.
    """
    import torch
    try:
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    except ImportError as exc:  # PT2E moved out of torch.ao into torchao (torch 2.10+)
        raise ImportError('quantize_pt2e_x86 needs torchao (pip install torchao)') from exc
    with torch.no_grad():
        graph = torch.export.export(module, (example,)).module()
    # The quantizer finds convs and linears by the ``source_fn_stack`` metadata, which
    # non-strict export (the default) leaves out; name each node's source layer type.
    sources = {torch.ops.aten.conv2d.default: torch.nn.Conv2d,
               torch.ops.aten.linear.default: torch.nn.Linear}
    for node in graph.graph.nodes:
        if node.target in sources and 'source_fn_stack' not in node.meta:
            node.meta['source_fn_stack'] = [(node.name, sources[node.target])]
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(torch.as_tensor(batch))
    return convert_pt2e(prepared)
