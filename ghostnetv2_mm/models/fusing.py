"""Fold the BatchNorms of a GhostNet-family checkpoint into its convs: the weights of a
``deploy=True`` backbone, written once instead of folded at every load.

The folding itself is :meth:`BaseGhostNet.switch_to_deploy` (``deploy.py``); this
module applies it to a state dict: load strictly, fold, check, return the weights.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch.nn.modules.batchnorm import _BatchNorm

from ..checkpoint import CheckpointError, load_model_weights
from ..checkpoint.adapter import split_backbone
from ..checkpoint.layouts import ReferenceLayout
from .backbone import FAMILY


def _has_batch_norm_statistics(state_dict) -> bool:
    return any(k.endswith(('running_mean', 'running_var')) for k in state_dict)


@torch.no_grad()
def fuse_state_dict(state_dict: Dict[str, torch.Tensor], arch: str = '1.0x',
                    dfc_blocks: Optional[Sequence[int]] = None, dfc_kernel_size: int = 5,
                    check_size: int = 96, backbone_type: str = 'GhostNetV2'
                    ) -> Tuple[Dict[str, torch.Tensor], Optional[float]]:
    """The deploy-mode weights of ``state_dict``, and the self-check's difference.

    ``state_dict`` is anything the backbone loads (see
    :func:`~ghostnetv2_mm.checkpoint.adapter.split_backbone` for which part is the
    backbone): a whole model of this project (its ``backbone.*`` entries are replaced
    by the fused ones, the neck and head kept), a bare backbone, or an official/timm
    file (whose classifier head becomes mmpretrain's ``StackedLinearClsHead`` under
    ``head.``, the backbone under ``backbone.``).

    Returns ``(fused state dict, max abs difference between the fused and unfused
    backbone on a random check_size x check_size input)``; the difference is None when
    ``check_size`` is 0.
    """
    if backbone_type not in FAMILY:
        raise ValueError(f'fuse_state_dict: invalid backbone_type={backbone_type!r}; '
                         f'allowed: {sorted(FAMILY)}')
    model = FAMILY[backbone_type](arch, out_indices=tuple(range(11)), dfc_blocks=dfc_blocks,
                                  dfc_kernel_size=dfc_kernel_size)
    has_norms = any(isinstance(m, _BatchNorm) for m in model.modules())
    if has_norms and not _has_batch_norm_statistics(state_dict):
        raise CheckpointError('the checkpoint has no BatchNorm statistics: already fused?')
    prefix, backbone, rest = split_backbone(state_dict)
    # The one loader: this project's layout or the official/timm one, strictly.
    load_model_weights(model, backbone, logger='silent')
    if not prefix:  # official/timm file: keep its classifier head, as mmpretrain's
        rest = ReferenceLayout.head_to_stacked_linear(backbone)
        prefix = 'backbone.' if rest else ''
    model.eval()
    x = torch.randn(1, 3, check_size, check_size) if check_size else None
    before = model(x) if x is not None else None
    model.switch_to_deploy(channels_last=False)
    after = model(x) if x is not None else None
    diff = None if x is None else max((a - b).abs().max().item()
                                      for a, b in zip(before, after))
    fused = dict(rest)
    fused.update({prefix + k: v.contiguous() for k, v in model.state_dict().items()})
    return fused, diff
