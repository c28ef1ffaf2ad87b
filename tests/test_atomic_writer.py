"""One module replaces files (ghostnetv2_mm/utils/fileio.py), and an export inside a
tool's atomic output writes its file once (no temporary file inside another)."""
import os
import re
import tempfile

import onnx

from ghostnetv2_mm.deployment import BackboneExport, export_onnx
from ghostnetv2_mm.models import GhostNetV2
from ghostnetv2_mm.utils import fileio

from helpers import ROOT

REPLACING = re.compile(r'\bos\.(replace|rename)\(|\bmkstemp\(|NamedTemporaryFile\(|shutil\.move\(')


def test_only_fileio_replaces_files():
    found = []
    for top in ('ghostnetv2_mm', 'tools'):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith('.py') or path.endswith(os.path.join('utils', 'fileio.py')):
                    continue
                with open(path, encoding='utf-8') as f:
                    found += [f'{os.path.relpath(path, ROOT)}:{i}' for i, line in
                              enumerate(f, 1) if REPLACING.search(line)]
    assert found == []


def _count_temporaries(monkeypatch):
    made = []
    real = tempfile.mkstemp

    def counting(*args, **kwargs):
        made.append(kwargs.get('dir'))
        return real(*args, **kwargs)

    monkeypatch.setattr(fileio.tempfile, 'mkstemp', counting)
    return made


def test_an_export_inside_an_atomic_output_writes_once(tmp_path, monkeypatch):
    made = _count_temporaries(monkeypatch)
    wrapper = BackboneExport(GhostNetV2(out_indices=(10,)).eval())
    target = tmp_path / 'backbone.onnx'
    with fileio.atomic_output(target) as out:
        export_onnx(wrapper, out.path, (64, 64), metadata={'k': 'v'})
        assert sorted(os.listdir(tmp_path)) == [os.path.basename(out.path)]
    assert len(made) == 1  # the tool's one temporary file, nothing inside it
    assert os.listdir(tmp_path) == ['backbone.onnx']
    assert {p.key: p.value for p in onnx.load(str(target)).metadata_props}['k'] == 'v'


def test_a_plain_write_still_goes_through_a_temporary_file(tmp_path, monkeypatch):
    made = _count_temporaries(monkeypatch)
    target = tmp_path / 'a.txt'
    target.write_text('old')
    fileio.atomic_write_text('new', target)
    assert len(made) == 1 and target.read_text() == 'new'
    assert os.listdir(tmp_path) == ['a.txt']


def test_a_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / 'a.txt'
    target.write_text('old')
    try:
        with fileio.atomic_output(target) as out:
            with open(out.path, 'w') as f:
                f.write('half')
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert target.read_text() == 'old' and os.listdir(tmp_path) == ['a.txt']
    # and the temporary file is no longer one that writes go straight into
    assert not fileio._OPEN_TEMPS
