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
                  per_channel: bool = True) -> None:
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
    """
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
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
        quantize_static(prepared, quantized, _Batches(input_name, calibration),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=list(op_types),
                        nodes_to_exclude=list(exclude_nodes or []),
                        per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        # what the float file records it was made from holds for this one too
        metadata = {p.key: p.value for p in source.metadata_props}
        metadata[METADATA_PREFIX + 'quantized'] = 'int8 QDQ (onnxruntime, MinMax)'
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


def quantized_node_counts(path: str) -> dict:
    """Operator counts of a QDQ file: ``{'int8': {...}, 'float': {...}}``. A node runs
    in INT8 when it reads a DequantizeLinear output and only QuantizeLinear nodes read
    its outputs (the pattern onnxruntime fuses into an integer kernel); every other
    compute node runs in float32."""
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
