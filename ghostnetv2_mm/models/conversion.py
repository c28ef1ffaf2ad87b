"""Convert an official/timm GhostNet-family checkpoint into this project's layouts.

It sits above both the checkpoint layer (key names, reading, adapting) and the
models: it recognises the file's family by the layout alone
(:func:`~ghostnetv2_mm.checkpoint.layouts.find_layout`), then builds that backbone or
classifier.

The conversion is a load followed by a save: the file is read by the one reader, put
into a freshly built model by the one adapter (strictly), and that model's state dict
is written. So a converted file holds exactly what the model needs, and a file that
does not fit is refused by the same checks as everywhere else.
"""
import os
from dataclasses import dataclass, field
from typing import List

from ..checkpoint import (CheckpointError, CheckpointMismatch, adapt_state_dict,
                          load_model_weights, read_checkpoint, save_checkpoint_file,
                          unwrap_state_dict)
from ..checkpoint.adapter import describe_mismatches
from ..checkpoint.layouts import LAYOUTS, find_layout, is_profiler_counter
from .backbone import FAMILY
from .classifier import build_classifier

# Stem width -> published width: the stem is make_divisible(16 * widen_factor, 4).
STEM_TO_ARCH = {16: '1.0x', 20: '1.3x', 24: '1.6x'}


@dataclass
class ConversionReport:
    backbone_type: str = ''
    arch: str = ''
    written: int = 0
    profiler_counters: int = 0
    problems: List[str] = field(default_factory=list)


def convert_checkpoint_file(src: str, dst: str, backbone_only: bool = False,
                            allow_partial: bool = False) -> ConversionReport:
    """Convert ``src`` (official file or timm state dict; path or URL) into ``dst``.

    Writes ``{'state_dict': ..., 'meta': ...}``: the mmpretrain classifier
    (``backbone.*``/``head.*`` keys, see :func:`ghostnetv2_mm.models.classifier_cfg`),
    or with ``backbone_only`` the bare backbone keys. Refuses (:class:`CheckpointError`,
    nothing written) when a tensor cannot be placed or one of the model's is missing,
    unless ``allow_partial``.
    """
    state_dict = unwrap_state_dict(read_checkpoint(src))
    layout = find_layout(state_dict)
    if layout is None:
        raise CheckpointError(
            f'{src!r} is in none of the official/timm layouts this project reads '
            f'({", ".join(known.name for known in LAYOUTS)}); if it '
            'is already a ghostnetv2-mm checkpoint, use it as it is')
    cls = FAMILY[layout.backbone_type]
    report = ConversionReport(backbone_type=cls.__name__)
    report.profiler_counters = sum(map(is_profiler_counter, state_dict))
    stem = int(state_dict['conv_stem.weight'].shape[0])
    if stem not in STEM_TO_ARCH:
        raise CheckpointError(f'{src!r}: stem width {stem} is none of the published '
                              f'widths {STEM_TO_ARCH}')
    report.arch = STEM_TO_ARCH[stem]
    if backbone_only:
        model = cls(arch=report.arch, out_indices=(-1,))
    else:
        num_classes = int(state_dict['classifier.weight'].shape[0]) \
            if 'classifier.weight' in state_dict else 1000
        model = build_classifier(report.arch, num_classes, backbone_type=cls.__name__)
    try:
        load_model_weights(model, state_dict, logger='silent')
    except CheckpointMismatch as exc:
        if not allow_partial:
            raise CheckpointError(
                f'refusing to write a partial checkpoint {dst!r} from {src!r}: '
                f'{describe_mismatches(exc.missing, exc.unexpected, exc.mismatched)} '
                '(pass allow_partial / --allow-partial to write it anyway)') from None
        # The complete lists (the exception's message shortens them).
        for what, keys in (('missing', sorted(exc.missing)),
                           ('could not be placed', sorted(exc.unexpected)),
                           ('with another shape', exc.mismatched)):
            if keys:
                report.problems.append(f'{len(keys)} {what}: {", ".join(keys)}')
        adapted, _ = adapt_state_dict(model, state_dict)
        expected = model.state_dict()
        model.load_state_dict({k: v for k, v in adapted.items()
                               if k in expected and v.shape == expected[k].shape},
                              strict=False)
    result = dict(model.state_dict())
    meta = dict(source=os.path.basename(src), backbone=cls.__name__, arch=report.arch,
                layout='backbone' if backbone_only else 'mmpretrain ImageClassifier',
                converted_by='ghostnetv2-mm')
    save_checkpoint_file({'state_dict': result, 'meta': meta}, dst)
    report.written = len(result)
    return report
