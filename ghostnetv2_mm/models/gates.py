"""The DFC attention gates of a GhostNet-family backbone, as the model applies them
(read by forward hooks; the visualisation tool draws them, tests check them)."""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .backbone import BaseGhostNet, GhostNetV2


def dfc_blocks(backbone: BaseGhostNet) -> List[Tuple[int, int, int, torch.nn.Module]]:
    """(stage, block in stage, global block index, bottleneck) for every bottleneck
    with DFC attention, as the backbone describes them (output index i + 1 is stage i).

    Args:
        backbone (BaseGhostNet): a GhostNet-family backbone.
    """
    return [(layer - 1, position, index, block)
            for index, layer, position, block in backbone.bottlenecks()
            if block.ghost1.dfc is not None]


def collect_gates(backbone: GhostNetV2, image: torch.Tensor,
                  blocks: Optional[List[int]] = None
                  ) -> 'OrderedDict[Tuple[int, int], torch.Tensor]':
    """Run ``backbone`` on ``image`` and return the gates of the chosen blocks.

    Keys are (stage, block in stage); values are the gates as the model applies
    them: resized (nearest) to the size of ghost1's output, which they multiply,
    shape (N, C, H, W), float32.

    Args:
        backbone (GhostNetV2): a backbone with DFC attention (V2 or V3), in eval mode.
        image (Tensor): its (N, 3, H, W) input.
        blocks (list of int, optional): global bottleneck indices to record (default:
            every DFC block).
    """
    raw: Dict[Tuple[int, int], torch.Tensor] = OrderedDict()
    sizes: Dict[Tuple[int, int], Tuple[int, int]] = {}
    handles = []
    for stage, i, index, block in dfc_blocks(backbone):
        if blocks is None or index in blocks:
            def gate_hook(module, args, output, key=(stage, i)):
                raw[key] = output.detach().float().clone()

            def size_hook(module, args, output, key=(stage, i)):
                sizes[key] = tuple(output.shape[-2:])
            handles.append(block.ghost1.dfc.register_forward_hook(gate_hook))
            handles.append(block.ghost1.register_forward_hook(size_hook))
    try:
        with torch.no_grad():
            backbone(image)
    finally:
        for h in handles:
            h.remove()
    gates: Dict[Tuple[int, int], torch.Tensor] = OrderedDict()
    for key, gate in raw.items():
        gates[key] = gate if tuple(gate.shape[-2:]) == sizes[key] else \
            F.interpolate(gate, size=sizes[key], mode='nearest')
    return gates
