"""Putting checkpoint weights into a model: the one adapter and the strict loader.

Every path that loads weights into a model of this project ends here:
``init_cfg=dict(type='Pretrained')`` of a backbone, ``tools/test.py``, the converter,
the fuse and export tools. mmengine's own ``load_from``/``--resume`` load through
mmengine, and still meet the same renaming, because it is the one load_state_dict
pre-hook of the GhostNet-family backbones and of the whole models built around them
(:func:`register_checkpoint_hook`, with a ``strict`` flag): the conversion belongs to
the model, and nothing about how OTHER models load changes. The renaming itself is
one function, :func:`adapt_state_dict`; :func:`load_model_weights` adapts a file
once, and the hooks then find nothing left to rename.
"""
import functools
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import print_log

from .layouts import ReferenceLayout, find_layout, is_profiler_counter
from .reading import read_checkpoint
from .safe_io import CheckpointError

# How many names a message lists before it says "... (N more)"; the error object
# keeps the full lists (``CheckpointMismatch.missing`` etc.).
SHOWN = 8


def unwrap_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint.

    Accepts a bare state dict or one nested under 'state_dict' or 'model' (official
    files use either a bare dict or 'state_dict'; mmengine uses 'state_dict'), and
    removes the 'module.' prefix of (Distributed)DataParallel checkpoints.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'checkpoint content is a {type(checkpoint).__name__}, '
                              'expected a dict of tensors (a state dict)')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    if checkpoint and all(k.startswith('module.') for k in checkpoint):
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


#: The name under which OpenMMLab models (detectors, segmentors, classifiers) keep
#: their backbone.
BACKBONE_PREFIX = 'backbone.'


def split_backbone(state_dict: Mapping[str, torch.Tensor]
                   ) -> Tuple[str, Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """``(prefix, backbone, rest)``: which part of a state dict is the backbone.

    The one rule every tool uses: a whole OpenMMLab model's file (any key under
    ``backbone.``) has its backbone there, without the prefix in ``backbone``, and its
    neck/head in ``rest``; any other file (a bare backbone, an official/timm file) is
    all backbone, with ``prefix`` ''.
    """
    if any(k.startswith(BACKBONE_PREFIX) for k in state_dict):
        backbone = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items()
                    if k.startswith(BACKBONE_PREFIX)}
        rest = {k: v for k, v in state_dict.items() if not k.startswith(BACKBONE_PREFIX)}
        return BACKBONE_PREFIX, backbone, rest
    return '', dict(state_dict), {}


# --------------------------------------------------------------------- the renaming
def _layout_of(module: nn.Module) -> Optional[ReferenceLayout]:
    return getattr(type(module), 'reference_layout', None)


def rename_reference_keys(module: nn.Module, state_dict: Dict[str, torch.Tensor],
                          prefix: str) -> None:
    """The renaming of one GhostNet-family backbone's keys (part of
    :func:`adapt_state_dict`).

    When the keys under ``prefix`` are in the backbone's reference layout (official or
    timm names, recognised by structure), rename them in place to this project's
    names, and drop what is not a weight of the backbone: thop's profiler counters and
    the classifier head (``conv_head``, ``classifier``). Keys that the layout cannot
    place are left as they are, so the loader reports them as unexpected. Any other
    state dict (this project's own layout, another model's) is not touched.
    """
    layout = _layout_of(module)
    own = [k for k in state_dict if k.startswith(prefix)]
    if layout is None or not layout.matches(k[len(prefix):] for k in own):
        return
    for key in own:
        relative = key[len(prefix):]
        if is_profiler_counter(relative) or layout.is_head_key(relative):
            del state_dict[key]
            continue
        new = layout.rename(relative)
        if new is not None:
            state_dict[prefix + new] = state_dict.pop(key)


def _ghostnet_backbones(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if _layout_of(m) is not None]


def relocate_reference_keys(model: nn.Module, state_dict: Dict[str, torch.Tensor]
                            ) -> List[str]:
    """Move, in place, the root-level keys of a reference-layout file given to a whole
    model (a classifier, a detector) under the name of its GhostNet backbone.

    The classifier head of the file becomes the weights of mmpretrain's
    ``StackedLinearClsHead`` when the model has one as ``head``; otherwise it is
    dropped, as it is no part of the model. Returns notes of what was dropped.
    """
    dropped = []
    for name, backbone in _ghostnet_backbones(model):
        layout = _layout_of(backbone)
        if not name or not layout.matches(state_dict):
            continue
        head = layout.head_to_stacked_linear(state_dict)
        moved = {f'{name}.{k}': v for k, v in state_dict.items() if not layout.is_head_key(k)}
        if head and _has_stacked_linear_head(model):
            moved.update(head)
        elif head:
            dropped.append('the classifier head (conv_head, classifier): '
                           f'{type(model).__name__} has no StackedLinearClsHead')
        state_dict.clear()
        state_dict.update(moved)
    return dropped


def adapt_state_dict(model: nn.Module, state_dict: Dict[str, torch.Tensor]
                     ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``state_dict`` in the key names of ``model``, and notes of what was dropped:
    :func:`relocate_reference_keys`, then each GhostNet backbone renames the keys under
    its prefix exactly as its load_state_dict pre-hook does."""
    state_dict = dict(state_dict)
    dropped = relocate_reference_keys(model, state_dict)
    for name, backbone in _ghostnet_backbones(model):
        layout = _layout_of(backbone)
        prefix = f'{name}.' if name else ''
        before = set(state_dict)
        rename_reference_keys(backbone, state_dict, prefix)
        heads = [k for k in before - set(state_dict)
                 if layout.is_head_key(k[len(prefix):])]
        if heads:
            dropped.append(f'{len(heads)} classifier-head tensor(s) ({", ".join(sorted(heads))})'
                           f', which are not part of {type(backbone).__name__}')
    return state_dict, dropped


def _has_stacked_linear_head(model: nn.Module) -> bool:
    head = getattr(model, 'head', None)
    return head is not None and type(head).__name__ == 'StackedLinearClsHead'


# ----------------------------------------------------------------- strict loading
def _listed(keys: List[str]) -> str:
    keys = sorted(keys)
    shown = ', '.join(keys[:SHOWN])
    return shown + (f', ... ({len(keys) - SHOWN} more)' if len(keys) > SHOWN else '')


class CheckpointMismatch(CheckpointError):
    """A checkpoint whose tensors do not fit the model; nothing was loaded.

    ``missing``, ``unexpected`` and ``mismatched`` hold the complete lists (the
    message shows the first few of each).
    """

    def __init__(self, message: str, missing, unexpected, mismatched):
        super().__init__(message)
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched


def state_dict_mismatches(expected: Mapping[str, torch.Tensor],
                          given: Mapping[str, torch.Tensor]
                          ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, other-shape) keys of ``given`` against ``expected``.

    BatchNorm's ``num_batches_tracked`` counters may be absent from ``given``.
    """
    missing = [k for k in expected if k not in given
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in given if k not in expected]
    mismatched = [f'{k}: {tuple(given[k].shape)} in the file, {tuple(v.shape)} in the model'
                  for k, v in expected.items()
                  if k in given and tuple(given[k].shape) != tuple(v.shape)]
    return missing, unexpected, mismatched


def describe_mismatches(missing, unexpected, mismatched) -> str:
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing: {_listed(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected: {_listed(unexpected)}')
    if mismatched:
        parts.append(f'{len(mismatched)} with another shape: {_listed(mismatched)}')
    return '; '.join(parts)


# ------------------------------------------------------------- the one load hook
def _reference_layout_note(keys) -> str:
    layout = find_layout(keys)
    return '' if layout is None else f' The file is in the layout of {layout.name}.'


# marks, in a state dict's ``_metadata``, keys that :func:`adapt_state_dict` has put in
# the model's names already (:func:`load_model_weights`): the hooks then leave them
ADAPTED = 'ghostnetv2_mm.adapted'


def _adapt_on_load(module: nn.Module, state_dict: Dict[str, torch.Tensor], prefix: str,
                   local_metadata: dict, *args, strict: bool = False) -> None:
    """The load_state_dict pre-hook (see :func:`register_checkpoint_hook`): the keys
    under ``prefix`` in ``module``'s names, by :func:`adapt_state_dict`, in place."""
    if local_metadata.get(ADAPTED):
        return
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not own:
        return
    adapted, dropped = adapt_state_dict(module, own)
    renamed = set(adapted) != set(own)  # only reference-layout keys are renamed
    name = type(module).__name__
    if strict:
        expected = module.state_dict()
        problems = state_dict_mismatches(expected, adapted)
        if renamed and any(problems):
            raise CheckpointMismatch(
                f'{name}: an official/timm GhostNet file that does not fit this model '
                '(another family, arch or width?); nothing was loaded. '
                f'{describe_mismatches(*problems)}.' + _reference_layout_note(own), *problems)
        if not renamed and not any(k in expected for k in adapted):
            raise CheckpointMismatch(
                f'{name}: no tensor of the checkpoint has a place in this model, so loading '
                f'it would load nothing; refused. The checkpoint\'s keys look like: '
                f'{", ".join(sorted(own)[:5])}; the model\'s: '
                f'{", ".join(sorted(expected)[:5])}.' + _reference_layout_note(own),
                [], list(own), [])
    if not renamed:
        return
    for key in own:
        del state_dict[prefix + key]
    state_dict.update((prefix + k, v) for k, v in adapted.items())
    for note in dropped:
        print_log(f'{name}: ignored {note}', logger='current')
    print_log(f'{name}: renamed an official/timm GhostNet file\'s keys', logger='current')


def register_checkpoint_hook(module: nn.Module, strict: bool = False) -> nn.Module:
    """The one load_state_dict pre-hook: whoever loads a state dict into ``module``
    (torch, mmengine's ``load_checkpoint`` / ``load_from``, :func:`load_model_weights`),
    official/timm GhostNet-family keys are put in ``module``'s names first, by
    :func:`adapt_state_dict` (the one renaming). Every GhostNet-family backbone has
    it; a whole model (classifier, detector) with such a backbone may get it too,
    so that a root-level official file is relocated under the backbone.

    Args:
        module (nn.Module): a GhostNet-family backbone, or a model containing one.
        strict (bool): all or nothing: a renamed file must fit ``module`` entirely
            (every tensor placed with its shape, every tensor of the model found), and
            any other file must have at least one tensor for it; otherwise
            :class:`CheckpointMismatch` is raised before anything is loaded. Without
            it, what fits is left to the loader and its own ``strict``.

    Returns:
        nn.Module: ``module``.
    """
    module._register_load_state_dict_pre_hook(
        functools.partial(_adapt_on_load, strict=strict), with_module=True)
    return module


def register_whole_model_hook(model: nn.Module) -> nn.Module:
    """:func:`register_checkpoint_hook` of a whole model, not strict (the name that
    ``tools/train.py`` uses)."""
    return register_checkpoint_hook(model)


def _select_prefix(state_dict, prefix, source):
    selected = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not selected:
        raise CheckpointError(f'{source}: no key starts with prefix={prefix!r}; keys look '
                              f'like: {_listed(list(state_dict))[:300]}')
    return selected


def load_model_weights(model: nn.Module,
                       checkpoint: Union[str, Mapping],
                       prefix: Optional[str] = None,
                       map_location='cpu',
                       logger='current',
                       check_only: bool = False) -> Dict[str, torch.Tensor]:
    """Load ``checkpoint`` into ``model``, all or nothing.

    ``checkpoint`` is anything :func:`read_checkpoint` reads (a local path, an
    ``http(s)://`` URL, another mmengine scheme) or an already loaded checkpoint dict.
    ``prefix`` selects a sub-dict (e.g. ``'backbone.'``). When no key of the file fits
    ``model`` and the file is a whole OpenMMLab model, its ``backbone.`` part is used
    (:func:`split_backbone`): a backbone takes a detector's or classifier's file.
    Official and timm GhostNet-family files are renamed (see :func:`adapt_state_dict`).

    Every parameter and buffer of ``model`` must be found with its shape (BatchNorm's
    ``num_batches_tracked`` excepted) and every selected tensor of the file must have
    a place; otherwise nothing is loaded and :class:`CheckpointMismatch` names what
    did not fit. Returns the state dict that was loaded (with ``check_only``: that
    would be loaded; the model is not changed).
    """
    if isinstance(checkpoint, Mapping):
        source, loaded = 'the given checkpoint', checkpoint
    else:
        source, loaded = repr(checkpoint), read_checkpoint(checkpoint, map_location)
    state_dict = unwrap_state_dict(loaded)
    if prefix:
        state_dict = _select_prefix(state_dict, prefix, source)
    expected = model.state_dict()
    if prefix is None and not any(k in expected for k in state_dict):
        # A backbone given a whole model's file: take its backbone part.
        state_dict = split_backbone(state_dict)[1]
    state_dict, dropped = adapt_state_dict(model, state_dict)

    missing, unexpected, mismatched = state_dict_mismatches(expected, state_dict)
    if missing or unexpected or mismatched:
        hint = ''
        layout = find_layout(state_dict)
        if layout is not None and layout is not _layout_of(model):
            hint = (f' The file is in the layout of {layout.name}: '
                    f'use type={layout.backbone_type!r} for it.')
        if getattr(model, 'deploy', False) and any('running_var' in k for k in state_dict):
            hint += (' This model is built with deploy=True (BatchNorm folded) and the '
                    'checkpoint has BatchNorm statistics: build it with deploy=False, load '
                    'the checkpoint, then call switch_to_deploy(); or fuse the checkpoint '
                    'once and load the fused file.')
        raise CheckpointMismatch(
            f'{source} does not fit {type(model).__name__} (another arch or width?); '
            f'nothing was loaded. {describe_mismatches(missing, unexpected, mismatched)}.'
            + hint, missing, unexpected, mismatched)
    if check_only:
        return state_dict
    # Everything fits (checked above); strict=False only because num_batches_tracked
    # may be absent from the file. Renamed once, above: the load hooks are told so.
    state_dict = OrderedDict(state_dict)
    state_dict._metadata = {name: {ADAPTED: True} for name, _ in model.named_modules()}
    model.load_state_dict(state_dict, strict=False)
    for note in dropped:
        print_log(f'{type(model).__name__}: ignored {note}', logger=logger)
    print_log(f'{type(model).__name__}: loaded {len(state_dict)} tensors from {source}',
              logger=logger)
    return state_dict
