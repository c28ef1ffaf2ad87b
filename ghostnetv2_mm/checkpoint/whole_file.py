"""A whole model that takes an official GhostNet file entirely, or refuses it.

mmengine's ``load_checkpoint`` (what ``mmpretrain.get_model``, ``init_model`` and the
inferencers call) loads non-strictly: keys that fit nowhere are only logged. The
official and timm files keep their keys at the root (``conv_stem.weight``, ...), where a
classifier expects ``backbone.layer0.conv.weight``; without help such a file loads
NOTHING into a classifier and the model stays randomly initialised, with a warning in a
log that nobody reads.

:func:`register_whole_file_hook` puts a load_state_dict pre-hook on the whole model that
runs before any of its modules loads a tensor, whoever loads it (torch, mmengine,
:func:`~ghostnetv2_mm.checkpoint.load_model_weights`):

* a file in a GhostNet-family reference layout is relocated under the backbone (and its
  head converted, see :func:`~.adapter.relocate_reference_keys`), but only when ALL of it
  fits: every tensor of the file finds its place with its shape and every tensor of the
  model is in the file. Otherwise :class:`~.adapter.CheckpointMismatch` is raised and
  nothing is loaded;
* any other file (this project's own layout, an mmpretrain checkpoint) is left to the
  loader and its ``strict`` setting, except one that has not a single tensor for the
  model: that is refused too, as loading it would load nothing.
"""
from typing import Dict

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .adapter import (CheckpointMismatch, adapt_state_dict, describe_mismatches,
                      relocate_reference_keys, state_dict_mismatches)
from .layouts import LAYOUTS, find_layout


def _reference_layout_name(keys) -> str:
    layout = find_layout(keys, LAYOUTS)
    return '' if layout is None else f' The file is in the layout of {layout.name}.'


def check_whole_file(model: nn.Module, state_dict: Dict[str, torch.Tensor]) -> bool:
    """Raise :class:`~.adapter.CheckpointMismatch` unless ``state_dict`` (as a loader
    hands it to ``model``, keys at the root) is one that ``model`` takes.

    Returns whether it is a reference-layout file that fits ``model`` entirely (and so
    is to be relocated). See the module docstring for the rules.
    """
    keys = list(state_dict)
    adapted, _ = adapt_state_dict(model, state_dict)
    # The adapter renames only reference-layout keys (at the root or under a backbone).
    is_reference = set(adapted) != set(keys)
    expected = model.state_dict()
    name = type(model).__name__
    if is_reference:
        missing, unexpected, mismatched = state_dict_mismatches(expected, adapted)
        if missing or unexpected or mismatched:
            raise CheckpointMismatch(
                f'{name}: an official/timm GhostNet file that does not fit this model '
                '(another family, arch or width?); nothing was loaded. '
                f'{describe_mismatches(missing, unexpected, mismatched)}.'
                + _reference_layout_name(keys), missing, unexpected, mismatched)
        return True
    if keys and not any(k in expected for k in adapted):
        raise CheckpointMismatch(
            f'{name}: no tensor of the checkpoint has a place in this model, so loading it '
            f'would load nothing; refused. The checkpoint\'s keys look like: '
            f'{", ".join(sorted(keys)[:5])}; the model\'s: '
            f'{", ".join(sorted(expected)[:5])}.' + _reference_layout_name(keys),
            [], keys, [])
    return False


def _take_whole_file(model, state_dict, prefix, *args) -> None:
    # Only a state dict given to the model itself (prefix ''), not to a wrapper of it.
    if prefix != '' or not check_whole_file(model, state_dict):
        return
    for note in relocate_reference_keys(model, state_dict):
        print_log(f'{type(model).__name__}: ignored {note}', logger='current')
    print_log(f'{type(model).__name__}: took an official/timm GhostNet file '
              '(keys relocated under the backbone)', logger='current')


def register_whole_file_hook(model: nn.Module) -> nn.Module:
    """Make ``model`` (a whole classifier with a GhostNet-family backbone) take an
    official/timm file entirely or refuse it, whoever loads it; see the module
    docstring. Returns ``model``."""
    model._register_load_state_dict_pre_hook(_take_whole_file, with_module=True)
    return model
