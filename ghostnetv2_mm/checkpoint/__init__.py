from .convert import (ConversionResult, convert_reference_state_dict, is_reference_layout,
                      unwrap_state_dict)
from .loading import (OFFICIAL_WEIGHTS_HINT, extract_backbone_state_dict, load_backbone_weights,
                      state_dict_mismatches)
from .safe_io import (CheckpointError, atomic_write_bytes, install_mmengine_hooks,
                      load_checkpoint_file, save_checkpoint_file)

__all__ = [
    'ConversionResult', 'convert_reference_state_dict', 'is_reference_layout',
    'unwrap_state_dict', 'OFFICIAL_WEIGHTS_HINT', 'extract_backbone_state_dict',
    'load_backbone_weights', 'state_dict_mismatches', 'CheckpointError', 'atomic_write_bytes',
    'install_mmengine_hooks', 'load_checkpoint_file', 'save_checkpoint_file'
]
