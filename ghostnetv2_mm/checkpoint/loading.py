"""Strict loading of pretrained weights into a GhostNetV2 backbone."""
import os
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .convert import convert_reference_state_dict, is_reference_layout, unwrap_state_dict
from .safe_io import CheckpointError, load_checkpoint_file

OFFICIAL_WEIGHTS_HINT = (
    'To get ImageNet weights: download ck_ghostnetv2_10.pth.tar (or _13 / _16) from the '
    'GitHub release "GhostNetV2" of huawei-noah/Efficient-AI-Backbones and either point '
    'the checkpoint path at that file (it is read directly) or convert it once with '
    '`python tools/model_converters/ghostnetv2_to_mm.py ck_ghostnetv2_10.pth.tar '
    'checkpoints/ghostnetv2_1.0x_backbone.pth --backbone-only`. To train from scratch '
    'instead, set model.backbone.init_cfg=None.')


def _short_list(keys, limit=8):
    keys = sorted(keys)
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def state_dict_mismatches(expected: Dict[str, torch.Tensor],
                          given: Dict[str, torch.Tensor]) -> List[str]:
    """Describe how ``given`` fails to match ``expected`` (empty list: it fits).

    BatchNorm's ``num_batches_tracked`` counters may be absent from ``given``.
    """
    missing = [k for k in expected if k not in given
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in given if k not in expected]
    mismatched = [f'{k}: {tuple(given[k].shape)} vs {tuple(v.shape)}'
                  for k, v in expected.items()
                  if k in given and tuple(given[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing: {_short_list(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected: {_short_list(unexpected)}')
    if mismatched:
        problems.append(f'{len(mismatched)} with another shape: {_short_list(mismatched)}')
    return problems


def extract_backbone_state_dict(state_dict: Dict[str, torch.Tensor],
                                prefix: Optional[str] = None,
                                source: str = 'checkpoint') -> Dict[str, torch.Tensor]:
    """Find the backbone weights in any supported layout.

    Supported: the official/timm reference layout (converted), a backbone-only state
    dict, and a full model state dict (``backbone.*`` keys; ``prefix`` defaults to
    'backbone.' there).
    """
    if prefix:
        selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not selected:
            raise CheckpointError(f'{source}: no key starts with prefix={prefix!r}; '
                                  f'keys look like: {_short_list(state_dict, 4)}')
        state_dict = selected
    if is_reference_layout(state_dict):
        converted = convert_reference_state_dict(state_dict)
        if converted.unplaced:
            raise CheckpointError(
                f'{source}: {len(converted.unplaced)} key(s) of the GhostNetV2 reference '
                f'layout could not be placed: {_short_list(converted.unplaced)}')
        return converted.section('backbone.')
    if not prefix and any(k.startswith('backbone.') for k in state_dict):
        return {k[len('backbone.'):]: v for k, v in state_dict.items()
                if k.startswith('backbone.')}
    return state_dict


def load_backbone_weights(backbone: nn.Module, checkpoint: str,
                          prefix: Optional[str] = None, map_location='cpu') -> None:
    """Load ``checkpoint`` into ``backbone``, all or nothing.

    Every parameter and buffer of the backbone must be found with the right shape
    (BatchNorm's ``num_batches_tracked`` counters excepted), and every tensor in the
    selected part of the file must have a place; otherwise nothing is loaded and the
    error lists what did not fit.
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'pretrained checkpoint not found: {checkpoint!r}. '
                                + OFFICIAL_WEIGHTS_HINT)
    state_dict = unwrap_state_dict(load_checkpoint_file(checkpoint, map_location))
    state_dict = extract_backbone_state_dict(state_dict, prefix, source=checkpoint)

    problems = state_dict_mismatches(backbone.state_dict(), state_dict)
    if problems:
        raise CheckpointError(
            f'{checkpoint!r} does not fit this GhostNetV2 backbone (wrong arch or '
            f'widen_factor?); nothing was loaded. ' + '; '.join(problems))
    backbone.load_state_dict(state_dict, strict=False)
    print_log(f'GhostNetV2: loaded {len(state_dict)} tensors from {checkpoint}',
              logger='current')
