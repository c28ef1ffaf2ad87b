"""Parameter and MAC counting with the paper's convention.

MACs are counted for convolutions and linear layers only: BatchNorm is excluded (it
folds into the preceding convolution at inference), as are activations, pooling,
the DFC sigmoid/resize and the element-wise products. This is how the GhostNetV2
paper reports 167 M MACs for 1.0x at 224x224; profilers that also count BN (thop)
report 185.8 M for the same model.
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn

COUNTING = 'conv + linear multiply-accumulates; BatchNorm, activations, pooling excluded'


def _forward_with_hooks(model: nn.Module, inputs, hooks) -> None:
    """One eval-mode, no-grad forward of ``model`` on ``inputs`` (a tensor or a tuple
    of positional arguments) with the forward hooks ``[(module, hook)]`` attached;
    the hooks are removed and the training mode restored afterwards."""
    handles = [m.register_forward_hook(fn) for m, fn in hooks]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, inputs) -> Tuple[int, Dict[str, int]]:
    """Run ``model`` once on ``inputs`` and return (total MACs, MACs per module type).

    ``inputs`` is a tensor or a tuple of positional arguments.
    """
    per_type: Dict[str, int] = {}

    def conv_hook(module: nn.Conv2d, args, output):
        kh, kw = module.kernel_size
        macs = output.numel() * (module.in_channels // module.groups) * kh * kw
        per_type['Conv2d'] = per_type.get('Conv2d', 0) + macs

    def linear_hook(module: nn.Linear, args, output):
        macs = output.numel() * module.in_features
        per_type['Linear'] = per_type.get('Linear', 0) + macs

    hooks = [(m, conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [(m, linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    _forward_with_hooks(model, inputs, hooks)
    return sum(per_type.values()), per_type


def count_used_parameters(model: nn.Module, inputs) -> int:
    """Parameters of the modules that one forward of ``model`` on ``inputs`` runs.

    Unlike :func:`count_parameters`, layers that exist but never run (a backbone's
    layers after its deepest output, kept so that ImageNet checkpoints load
    strictly) are not counted; a module called twice counts once.
    """
    used = set()
    _forward_with_hooks(model, inputs, [
        (m, lambda module, args, output: used.add(module)) for m in model.modules()
        if any(True for _ in m.parameters(recurse=False))])
    return sum(p.numel() for m in used for p in m.parameters(recurse=False))
