"""Checkpoints: one reader, one adapter, safe and atomic IO.

``read_checkpoint``   local path / URL / mmengine scheme, read as data only (reading.py)
``layouts``           the official/timm key names of the GhostNet family (layouts.py)
``load_model_weights``  strict, all-or-nothing loading into any model (adapter.py)
``convert_checkpoint_file``  official/timm file -> this project's layout (convert.py)
"""
from .adapter import (CheckpointMismatch, adapt_state_dict, load_model_weights,
                      register_reference_layout_hook, register_whole_model_hook,
                      relocate_reference_keys, rename_reference_keys,
                      state_dict_mismatches, unwrap_state_dict)
from .convert import ConversionReport, convert_checkpoint_file
from .layouts import GHOSTNETV2, ReferenceLayout
from .reading import read_checkpoint, url_cache_path
from .safe_io import (ATOMIC_BACKEND, CheckpointError, atomic_write_bytes,
                      load_checkpoint_file, register_safe_globals, save_checkpoint_file)

__all__ = [
    'CheckpointMismatch', 'adapt_state_dict', 'load_model_weights',
    'register_reference_layout_hook', 'register_whole_model_hook',
    'relocate_reference_keys', 'rename_reference_keys', 'state_dict_mismatches',
    'unwrap_state_dict', 'ConversionReport', 'convert_checkpoint_file', 'GHOSTNETV2',
    'ReferenceLayout', 'read_checkpoint', 'url_cache_path', 'ATOMIC_BACKEND',
    'CheckpointError', 'atomic_write_bytes', 'load_checkpoint_file',
    'register_safe_globals', 'save_checkpoint_file'
]
