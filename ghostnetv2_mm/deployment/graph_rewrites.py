"""Exact rewrites of an exported ONNX graph for the CPU runtimes' blocked layouts.

onnxruntime runs convolutions in a blocked "NCHWc" layout (16-channel blocks with
AVX-512, 8 with AVX2; ncnn packs 4, 8 or 16 channels likewise). A convolution pads
its output channels to the block internally, but a ``Concat`` stays in the blocked
layout only when every input's channel count is a multiple of the block; otherwise
both inputs are converted back to NCHW, concatenated there, and the result is
converted to the blocked layout again for the next convolution. GhostNetV2's ghost
modules concatenate two halves of 8, 12, 20, 24, 36, ... channels, so at the
largest maps (112 x 112 and its first stride-2 block at 224) these conversions and
the NCHW concatenation cost more than the convolutions around them.

:func:`pad_ghost_concats` pads both halves of such a concatenation with zero
channels up to a multiple of ``multiple``: the primary 1x1 conv and the cheap
depthwise conv get zero filters and zero biases for the new channels (whose
outputs are then exactly 0, also after a ReLU), and every consumer gets zero
weights for them (a dense conv: zero input columns; a depthwise conv: zero
filters, so its new outputs are 0 again, and its own consumers are padded in turn).
Every original channel's value is computed from the same products as before plus
exact zeros, so the outputs are unchanged (``tests/test_export_graph.py``).
It only pads where the runtime computes the padded channels anyway (the convs'
blocks) and the concatenation's consumers are convolutions: a concatenation that
feeds anything else (the DFC gate product, a residual add, a graph output) is left
as it is, since padding there would carry the padding into NCHW ops.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: The channel block the padding aims at: onnxruntime's AVX-512 block, which is also
#: a multiple of the AVX2 (8) and NEON (4) blocks.
DEFAULT_MULTIPLE = 16


def _attribute(node, name: str, default=None):
    from onnx import helper
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _set_attribute(node, name: str, value) -> None:
    from onnx import helper
    for attr in list(node.attribute):
        if attr.name == name:
            node.attribute.remove(attr)
    node.attribute.append(helper.make_attribute(name, value))


def _insert_zeros(array: np.ndarray, inserts: Sequence[Tuple[int, int]],
                  axis: int) -> np.ndarray:
    """``array`` with ``count`` zero slices inserted along ``axis`` before each
    original index ``position`` of ``inserts`` (ascending)."""
    parts, last = [], 0
    for position, count in inserts:
        parts.append(np.take(array, np.arange(last, position), axis=axis))
        shape = list(array.shape)
        shape[axis] = count
        parts.append(np.zeros(shape, array.dtype))
        last = position
    parts.append(np.take(array, np.arange(last, array.shape[axis]), axis=axis))
    return np.concatenate(parts, axis=axis)


class _Graph:
    """Producer / consumer maps of an ONNX graph and its constant tensors."""

    def __init__(self, model):
        self.graph = model.graph
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.producer = {out: node for node in self.graph.node for out in node.output}
        self.consumers: Dict[str, List] = {}
        for node in self.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in self.graph.output}

    def constant(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer, also behind ``Identity`` nodes (the exporter
        writes shared weights that way); None for a computed tensor."""
        from onnx import numpy_helper
        while name not in self.initializers:
            node = self.producer.get(name)
            if node is None or node.op_type != 'Identity':
                return None
            name = node.input[0]
        return numpy_helper.to_array(self.initializers[name])

    def replace_input(self, node, index: int, value: np.ndarray, tag: str) -> None:
        """Give ``node`` a new initializer as input ``index`` (others may share the
        old one)."""
        from onnx import numpy_helper
        name = f'{node.name or node.output[0]}.{tag}.padded'
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        node.input[index] = name

    def conv_behind(self, name: str):
        """The biased ``Conv`` with constant weights producing ``name``, directly
        or through one ``Relu``; None otherwise."""
        node = self.producer.get(name)
        if node is not None and node.op_type == 'Relu':
            if len(self.consumers.get(node.input[0], [])) != 1:
                return None
            node = self.producer.get(node.input[0])
        if (node is None or node.op_type != 'Conv' or len(node.input) < 3
                or self.constant(node.input[1]) is None
                or self.constant(node.input[2]) is None):
            return None
        return node

    def is_depthwise(self, conv) -> bool:
        weight = self.constant(conv.input[1])
        return (weight is not None and weight.shape[1] == 1
                and _attribute(conv, 'group', 1) == weight.shape[0])

    def convs_only(self, name: str, depth: int = 0) -> bool:
        """Whether every consumer of ``name`` is a conv with constant weights that
        reads it as its data input (through ``Relu`` nodes, and through depthwise
        convs whose consumers are such convs again)."""
        consumers = self.consumers.get(name, [])
        if not consumers or name in self.outputs or depth > 4:
            return False
        for node in consumers:
            if node.op_type == 'Relu':
                if not self.convs_only(node.output[0], depth):
                    return False
                continue
            if (node.op_type != 'Conv' or list(node.input).index(name) != 0
                    or self.constant(node.input[1]) is None):
                return False
            if _attribute(node, 'group', 1) == 1:
                continue
            if not (self.is_depthwise(node) and len(node.input) > 2
                    and self.constant(node.input[2]) is not None
                    and self.convs_only(node.output[0], depth + 1)):
                return False
        return True

    def pad_consumers(self, name: str, inserts: Sequence[Tuple[int, int]]) -> None:
        for node in self.consumers.get(name, []):
            if node.op_type == 'Relu':
                self.pad_consumers(node.output[0], inserts)
                continue
            weight = self.constant(node.input[1])
            if _attribute(node, 'group', 1) == 1:
                self.replace_input(node, 1, _insert_zeros(weight, inserts, 1), 'weight')
                continue
            self.replace_input(node, 1, _insert_zeros(weight, inserts, 0), 'weight')
            self.replace_input(node, 2, _insert_zeros(self.constant(node.input[2]),
                                                      inserts, 0), 'bias')
            _set_attribute(node, 'group', int(weight.shape[0] + sum(c for _, c in inserts)))
            self.pad_consumers(node.output[0], inserts)

    def drop_unused(self) -> None:
        """Remove ``Identity`` nodes and initializers nothing reads any more."""
        while True:
            used = {name for node in self.graph.node for name in node.input}
            used |= self.outputs
            dead = [node for node in self.graph.node
                    if node.op_type == 'Identity' and node.output[0] not in used]
            if not dead:
                break
            for node in dead:
                self.graph.node.remove(node)
        used = {name for node in self.graph.node for name in node.input}
        for tensor in list(self.graph.initializer):
            if tensor.name not in used:
                self.graph.initializer.remove(tensor)


def pad_ghost_concats(model, multiple: int = DEFAULT_MULTIPLE) -> List[str]:
    """Pad the two halves of every ghost-module concatenation that feeds only
    convolutions to a multiple of ``multiple`` channels, in place (exact: see the
    module docstring).

    A ghost concatenation is ``Concat(axis=1)`` of a primary conv's output (through
    an optional ``Relu``) and a depthwise conv's output computed from it, with equal
    channel counts. Halves already a multiple of ``multiple`` are left alone.

    Args:
        model (onnx.ModelProto): The exported model, changed in place.
        multiple (int): The channel multiple to pad to. Default: 16.

    Returns:
        list[str]: The names of the padded ``Concat`` nodes.
    """
    if not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f'multiple={multiple!r}: allowed: an int >= 1')
    graph = _Graph(model)
    padded = []
    for node in list(graph.graph.node):
        if (node.op_type != 'Concat' or _attribute(node, 'axis') != 1
                or len(node.input) != 2):
            continue
        primary, cheap = graph.conv_behind(node.input[0]), graph.conv_behind(node.input[1])
        if primary is None or cheap is None or not graph.is_depthwise(cheap) \
                or _attribute(primary, 'group', 1) != 1:
            continue
        # the cheap conv reads the primary half, which feeds nothing but it and the
        # concatenation; the cheap half feeds only the concatenation
        if cheap.input[0] != node.input[0] \
                or len(graph.consumers.get(node.input[0], [])) != 2 \
                or len(graph.consumers.get(node.input[1], [])) != 1:
            continue
        channels = graph.constant(primary.input[1]).shape[0]
        if graph.constant(cheap.input[1]).shape[0] != channels:
            continue
        pad = -channels % multiple
        if pad == 0 or not graph.convs_only(node.output[0]):
            continue
        for conv in (primary, cheap):
            graph.replace_input(conv, 1, _insert_zeros(graph.constant(conv.input[1]),
                                                       [(channels, pad)], 0), 'weight')
            graph.replace_input(conv, 2, _insert_zeros(graph.constant(conv.input[2]),
                                                       [(channels, pad)], 0), 'bias')
        _set_attribute(cheap, 'group', int(channels + pad))
        graph.pad_consumers(node.output[0], [(channels, pad), (2 * channels, pad)])
        padded.append(node.name)
    if padded:
        graph.drop_unused()
        # shapes recorded by the exporter no longer hold for the padded tensors
        del graph.graph.value_info[:]
    return padded
