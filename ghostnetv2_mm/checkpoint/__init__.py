"""Checkpoints: one reader, one adapter, safe and atomic IO. Imports nothing from
``ghostnetv2_mm.models``: the layouts carry, as data, which backbone type reads them.

``read_checkpoint``   local path / URL / mmengine scheme, read as data only (reading.py)
``layouts``           the official/timm key names of the GhostNet family,
                      ``find_layout``, the one place a file's family is recognised,
                      and ``official_url``, the official weights' URLs
``load_model_weights``  strict, all-or-nothing loading into any model (adapter.py)
``register_checkpoint_hook``  the one load_state_dict pre-hook (``strict`` flag), and
                      ``adapt_state_dict``, the one renaming (adapter.py)
``split_backbone``    the one rule for which part of a state dict is the backbone

Building models from files (conversion, BatchNorm fusing) sits above this layer and
the models, in ``ghostnetv2_mm.models.conversion`` and ``ghostnetv2_mm.models.fusing``.
"""
from .adapter import (BACKBONE_PREFIX, CheckpointMismatch, adapt_state_dict,
                      load_model_weights, register_checkpoint_hook,
                      register_whole_model_hook, relocate_reference_keys,
                      rename_reference_keys, split_backbone, state_dict_mismatches,
                      unwrap_state_dict)
from .layouts import (GHOSTNET, GHOSTNETV2, GHOSTNETV3, LAYOUTS, OFFICIAL_WEIGHTS,
                      ReferenceLayout, find_layout, official_url)
from .reading import read_checkpoint, url_cache_path
from .safe_io import (ATOMIC_BACKEND, CheckpointError, atomic_write_bytes,
                      load_checkpoint_file, register_safe_globals, save_checkpoint_file)

__all__ = [
    'BACKBONE_PREFIX', 'CheckpointMismatch', 'adapt_state_dict', 'load_model_weights',
    'register_checkpoint_hook', 'register_whole_model_hook',
    'relocate_reference_keys', 'rename_reference_keys', 'split_backbone',
    'state_dict_mismatches', 'unwrap_state_dict', 'GHOSTNET', 'GHOSTNETV2', 'GHOSTNETV3',
    'LAYOUTS', 'OFFICIAL_WEIGHTS', 'official_url', 'ReferenceLayout', 'find_layout',
    'read_checkpoint', 'url_cache_path',
    'ATOMIC_BACKEND', 'CheckpointError', 'atomic_write_bytes', 'load_checkpoint_file',
    'register_safe_globals', 'save_checkpoint_file'
]
