"""Convert an official/timm GhostNetV2 checkpoint file into this project's layouts."""
import os
from dataclasses import dataclass, field
from typing import List

from .convert import convert_reference_state_dict, infer_arch, is_reference_layout, unwrap_state_dict
from .loading import state_dict_mismatches
from .safe_io import CheckpointError, load_checkpoint_file, save_checkpoint_file


@dataclass
class ConversionReport:
    arch: str = ''
    written: int = 0
    profiler_counters: int = 0
    unplaced: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)


def expected_classifier_state_dict(arch: str, num_classes: int):
    """The state dict of ``ImageClassifier(GhostNetV2(arch), neck, head)``."""
    import torch.nn as nn

    from ..models import GhostNetV2, GhostNetV2ClsNeck
    backbone = GhostNetV2(arch=arch, out_indices=(10,))
    neck = GhostNetV2ClsNeck(in_channels=backbone.out_channels[-1])
    expected = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    expected.update({f'neck.{k}': v for k, v in neck.state_dict().items()})
    fc = nn.Linear(neck.conv_head.out_channels, num_classes)
    expected.update({f'head.fc.{k}': v for k, v in fc.state_dict().items()})
    return expected


def convert_checkpoint_file(src: str, dst: str, backbone_only: bool = False,
                            allow_partial: bool = False) -> ConversionReport:
    """Convert ``src`` (official ``ck_ghostnetv2_*.pth.tar`` or a timm state dict).

    Writes ``dst`` as ``{'state_dict': ..., 'meta': ...}``: the full mmpretrain
    classifier (``backbone.``/``neck.``/``head.`` keys), or with ``backbone_only``
    the bare backbone keys. Refuses (CheckpointError, nothing written) when a key
    cannot be placed or a weight of the model is missing, unless ``allow_partial``.
    """
    state_dict = unwrap_state_dict(load_checkpoint_file(src))
    if not is_reference_layout(state_dict):
        raise CheckpointError(
            f'{src!r} is not in the official/timm GhostNetV2 layout (no conv_stem.weight / '
            'blocks.0.0.ghost1.primary_conv.0.weight); if it is already a ghostnetv2-mm '
            'checkpoint, use it as it is')
    converted = convert_reference_state_dict(state_dict)
    report = ConversionReport(profiler_counters=len(converted.profiler_counters),
                              unplaced=list(converted.unplaced))
    report.arch = infer_arch(converted.state_dict)
    fc = converted.state_dict.get('head.fc.weight')
    num_classes = int(fc.shape[0]) if fc is not None else 1000
    expected = expected_classifier_state_dict(report.arch, num_classes)
    result = converted.state_dict
    if backbone_only:
        expected = {k[9:]: v for k, v in expected.items() if k.startswith('backbone.')}
        result = converted.section('backbone.')
    report.problems = state_dict_mismatches(expected, result)
    if report.unplaced:
        report.problems.insert(0, f'{len(report.unplaced)} key(s) could not be placed: '
                                  + ', '.join(report.unplaced[:8]))
    if report.problems and not allow_partial:
        raise CheckpointError(f'refusing to write a partial checkpoint {dst!r} from {src!r}: '
                              + '; '.join(report.problems)
                              + ' (pass allow_partial / --allow-partial to write it anyway)')
    meta = dict(source=os.path.basename(src), arch=report.arch,
                layout='backbone' if backbone_only else 'mmpretrain ImageClassifier',
                converted_by='ghostnetv2-mm')
    save_checkpoint_file({'state_dict': result, 'meta': meta}, dst)
    report.written = len(result)
    return report
