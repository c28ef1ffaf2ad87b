"""Graph capture of the GhostNet-family backbones, and the input sizes each route covers.

Every backbone (V1, V2, V3; every arch; training form and the deploy form of
``switch_to_deploy()``) is captured by:

* ``torch.fx.symbolic_trace`` and torchvision's ``create_feature_extractor``: the
  graph computes what the eager network computes at EVERY input size, 1x1 included.
  The two size-dependent helpers (the input check and the DFC pooling kernel
  ``min(2, side)``) are ``torch.fx.wrap`` leaves, called with the real sizes when the
  graph runs. Node names are the module names: ``layer0`` (stem) ... ``layer10``
  (final conv) for the outputs of the eleven output indices (``feature_info[i]['module']``),
  e.g. ``create_feature_extractor(model, {'layer3': 'c2', 'layer5': 'c3', 'layer7':
  'c4', 'layer9': 'c5'})`` taps the default ``out_indices=(3, 5, 7, 9)``.
* ``torch.export.export`` with a dynamic batch and dynamic H and W: plainly for sides
  from :data:`PLAIN_EXPORT_MIN_SIDE` (97) up; from :data:`EXPORT_MIN_SIDE` (33) up with
  PyTorch's experimental size-oblivious mode (:func:`export_backbone` does both).

Why these bounds: below 33 px the stride-32 maps are 1 px, where the DFC pooling
kernel becomes 1 (a branch on a size: export specialises it). From 33 to 96 px the
DFC gate of the last stage (stride 64) is 1 px for some sizes and wider for others;
PyTorch's export records, for every tensor, whether each side is 1 (its contiguity
test), which splits that range unless size-oblivious reasoning
(``torch.fx.experimental._config.backed_size_oblivious``) is on. The deploy form's
channels-last convolutions add the same split through the choice of the conv kernel's
layout, so below 97 px export it with ``switch_to_deploy(channels_last=False)``.

``torch.jit.script`` is not supported: mmcv's ``ConvModule`` (the training-form conv
unit) is not scriptable. ``torch.jit.trace`` is what the ONNX export uses
(``ghostnetv2_mm.deployment``).
"""
from typing import Optional

import torch
import torch.fx.experimental._config as fx_config
from torch.export import Dim, ExportedProgram

#: Smallest input side that ``torch.export`` covers (the stride-32 maps are >= 2 px).
EXPORT_MIN_SIDE = 33
#: Smallest input side that ``torch.export`` covers without size-oblivious mode
#: (every DFC gate, down to stride 64, is >= 2 px).
PLAIN_EXPORT_MIN_SIDE = 97


def export_backbone(model: torch.nn.Module, *, min_side: int = EXPORT_MIN_SIDE,
                    max_side: int = 1024, example: Optional[torch.Tensor] = None
                    ) -> ExportedProgram:
    """``torch.export.export`` a GhostNet-family backbone with a dynamic batch (>= 1)
    and dynamic height and width in ``[min_side, max_side]``.

    For ``min_side`` < :data:`PLAIN_EXPORT_MIN_SIDE` the export runs in PyTorch's
    size-oblivious mode; later passes over the program that trace it again (e.g.
    ``ExportedProgram.run_decompositions()``) must run in it too::

        with torch.fx.experimental._config.patch(backed_size_oblivious=True):
            program = program.run_decompositions()

    The program refuses other sizes with a one-line error ("Guard failed: ...").

    Args:
        model (nn.Module): A ``GhostNet`` / ``GhostNetV2`` / ``GhostNetV3``, in training
            or deploy form (below :data:`PLAIN_EXPORT_MIN_SIDE`, deploy form only as
            ``switch_to_deploy(channels_last=False)``).
        min_side (int): Smallest height and width; at least :data:`EXPORT_MIN_SIDE`.
            Default: 33.
        max_side (int): Largest height and width. Default: 1024.
        example (Tensor, optional): Example input (batch >= 2, sides in range).
            Default: zeros of shape (2, in_channels, min_side, min_side + 1) (sides
            clipped to ``max_side``) in the model's dtype and device.

    Returns:
        ExportedProgram: the program; ``program.module()`` runs it.
    """
    if not isinstance(min_side, int) or min_side < EXPORT_MIN_SIDE:
        raise ValueError(f'export_backbone: min_side={min_side!r} is not covered; '
                         f'allowed: an int >= {EXPORT_MIN_SIDE}')
    if not isinstance(max_side, int) or max_side < min_side:
        raise ValueError(f'export_backbone: max_side={max_side!r} is not allowed; '
                         f'allowed: an int >= min_side ({min_side})')
    size_oblivious = min_side < PLAIN_EXPORT_MIN_SIDE
    if size_oblivious and getattr(model, '_deploy_channels_last', False):
        raise ValueError(
            f'export_backbone: min_side={min_side} needs the deploy form in NCHW; '
            f'allowed: switch_to_deploy(channels_last=False), or min_side >= '
            f'{PLAIN_EXPORT_MIN_SIDE}')
    if example is None:
        param = next(model.parameters())
        example = torch.zeros(2, model.in_channels, min_side, min(min_side + 1, max_side),
                              dtype=param.dtype, device=param.device)
    dynamic = {0: Dim('batch', min=1),
               2: Dim('height', min=min_side, max=max_side),
               3: Dim('width', min=min_side, max=max_side)}
    with fx_config.patch(backed_size_oblivious=size_oblivious):
        return torch.export.export(model, (example,), dynamic_shapes=(dynamic,))
