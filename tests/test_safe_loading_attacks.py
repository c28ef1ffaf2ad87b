"""The safe loader's restricted ``getattr`` under attack (issue 19, case 13).

mmengine checkpoints pickle HistoryBuffer's statistics methods as
``getattr(HistoryBuffer, 'mean')``, so ``builtins.getattr`` is allowed while loading,
through a stand-in that resolves only those four lookups. These files walk
``getattr`` from allowed objects toward functions, ``__globals__``, ``__class__``,
``__subclasses__`` and ``eval``. The last one is live: plain ``pickle`` runs its
``eval`` (checked below), which would create a marker file. Every reader refuses
every file, names the lookup it refused, and the marker never appears.
"""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from ghostnetv2_mm.checkpoint import CheckpointError, load_checkpoint_file, read_checkpoint
from ghostnetv2_mm.models import GhostNetV2, convert_checkpoint_file

from helpers import Call, Lookup, eval_payload


PAYLOADS = {
    # another function of an allowed class
    'function': lambda marker: Lookup(HistoryBuffer, 'update'),
    'function-of-numpy': lambda marker: Lookup(np.ndarray, 'tofile'),
    # an allowed lookup first, then its function's globals
    '__globals__': lambda marker: Lookup(Lookup(HistoryBuffer, 'mean'), '__globals__'),
    '__class__': lambda marker: Lookup(np.ndarray, '__class__'),
    '__subclasses__': lambda marker: Call(Lookup(Lookup(HistoryBuffer, '__class__'),
                                                 '__subclasses__')),
    'eval': eval_payload,
}


def write_payload(folder, name, wrap=lambda payload: {'state_dict': {}, 'meta': payload}):
    marker = folder / f'{name}.ran'
    path = folder / f'{name}.pth'
    torch.save(wrap(PAYLOADS[name](marker)), path)
    return str(path), marker


def assert_refused(exc_info, marker):
    message = str(exc_info.value)
    assert 'refused to load checkpoint' in message and 'getattr(' in message, message
    assert 'nothing from the file was run' in message
    assert not marker.exists()


def test_the_eval_payload_is_live(tmp_path):
    """Without the safe loader, the eval file runs code: the attack is real."""
    marker = tmp_path / 'live.ran'
    pickle.loads(pickle.dumps(eval_payload(marker)))
    assert marker.read_text() == 'ran'


@pytest.mark.parametrize('name', sorted(PAYLOADS))
def test_load_checkpoint_file_refuses_getattr_walks(name, tmp_path):
    path, marker = write_payload(tmp_path, name)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint_file(path)
    assert_refused(info, marker)


@pytest.mark.parametrize('name', ['function', 'eval'])
def test_read_checkpoint_and_init_cfg_refuse_getattr_walks(name, tmp_path):
    path, marker = write_payload(tmp_path, name)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert_refused(info, marker)
    backbone = GhostNetV2(init_cfg=dict(type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError) as info:
        backbone.init_weights()
    assert_refused(info, marker)


@pytest.mark.parametrize('name', ['function', 'eval'])
def test_the_converter_refuses_getattr_walks_and_writes_nothing(name, tmp_path):
    path, marker = write_payload(tmp_path, name)
    dst = tmp_path / 'converted.pth'
    with pytest.raises(CheckpointError) as info:
        convert_checkpoint_file(path, str(dst))
    assert_refused(info, marker)
    assert not dst.exists()


def test_a_real_history_buffer_still_loads(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(2.0)
    buffer.update(4.0)
    path = tmp_path / 'hub.pth'
    torch.save({'state_dict': {}, 'message_hub': {'loss': buffer}}, path)
    assert load_checkpoint_file(str(path))['message_hub']['loss'].mean() == 3.0
