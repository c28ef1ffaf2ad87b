"""Imports flow down only, and the plugin's core does not need the benchmarks.

The package is built in layers, lowest first (docs/architecture.md):

    errors, version  <  utils, datasets, compat  <  checkpoint  <  models
    <  deployment, model_hub  <  preflight  <  runner  <  benchmarks

A module may import its own part (``models.backbone`` -> ``models.blocks``) and any
LOWER layer, never a higher one: read from the source (every ``import``, also the
ones inside functions), so a lazy import cannot hide an arrow that runs back up.
"""
import ast
import os
import subprocess
import sys

from helpers import ROOT

PACKAGE = 'ghostnetv2_mm'
LAYERS = [
    ('errors', 'version'),
    ('utils', 'datasets', 'compat'),
    ('checkpoint',),
    ('models',),
    ('deployment', 'model_hub'),
    ('preflight',),
    ('runner',),
    ('benchmarks',),
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
CORE = ('models', 'checkpoint', 'model_hub', 'deployment')


def package_modules():
    """(dotted name, path, is_package) of every module of the package."""
    base = os.path.join(ROOT, PACKAGE)
    for folder, _, files in os.walk(base):
        for name in sorted(files):
            if not name.endswith('.py'):
                continue
            rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3].split(os.sep)
            is_package = rel[-1] == '__init__'
            yield '.'.join(rel[:-1] if is_package else rel), os.path.join(folder, name), \
                is_package


def imported_modules(module: str, path: str, is_package: bool):
    """Absolute names of the package's modules that ``path`` imports (anywhere in it)."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    here = module.split('.') if is_package else module.split('.')[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            # `from . import x` names submodules: count each
            names = [f'{target}.{alias.name}' for alias in node.names] if not node.module \
                else [target]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + '.'):
                yield name


def part_of(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def upward_imports():
    found = []
    for module, path, is_package in package_modules():
        part = part_of(module)
        if part not in LAYER_OF:  # the package's face (__init__) hands names on
            continue
        for target in imported_modules(module, path, is_package):
            other = part_of(target)
            if other == part or other not in LAYER_OF:
                continue
            if LAYER_OF[other] >= LAYER_OF[part]:
                found.append(f'{module} imports {target}')
    return found


def test_every_part_has_a_layer():
    parts = {part_of(module) for module, _, _ in package_modules()} - {''}
    assert parts <= set(LAYER_OF), f'add to LAYERS: {sorted(parts - set(LAYER_OF))}'


def test_imports_flow_down_only():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(monkeypatch):
    # the check itself must see a lazy import that runs back up
    real = imported_modules

    def with_one_more(module, path, is_package):
        yield from real(module, path, is_package)
        if module == 'ghostnetv2_mm.checkpoint.reading':
            yield 'ghostnetv2_mm.models.backbone'

    monkeypatch.setitem(globals(), 'imported_modules', with_one_more)
    assert upward_imports() == [
        'ghostnetv2_mm.checkpoint.reading imports ghostnetv2_mm.models.backbone']


BLOCKED_CORE = r'''
import importlib, pkgutil, sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == 'ghostnetv2_mm.benchmarks' or name.startswith('ghostnetv2_mm.benchmarks.'):
            raise ImportError('blocked: ' + name)
        return None

sys.meta_path.insert(0, Refuse())
import ghostnetv2_mm
import torch
names = []
for part in %r:
    module = importlib.import_module('ghostnetv2_mm.' + part)
    names.append(module.__name__)
    for info in pkgutil.walk_packages(getattr(module, '__path__', []), module.__name__ + '.'):
        importlib.import_module(info.name)
        names.append(info.name)
from ghostnetv2_mm.models import GhostNetV2, build_classifier
from ghostnetv2_mm.deployment import BackboneExport
model = GhostNetV2(arch='1.0x', out_indices=(10,)).eval()
with torch.no_grad():
    out = BackboneExport(model)(torch.rand(1, 3, 64, 64))
assert tuple(out[0].shape) == (1, 960, 2, 2), out[0].shape
assert not [n for n in sys.modules if n.startswith('ghostnetv2_mm.benchmarks')]
try:
    import ghostnetv2_mm.benchmarks
except ImportError as exc:
    print('refused:', exc)
print(len(names), 'modules')
'''


def test_core_works_with_benchmarks_blocked():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    proc = subprocess.run([sys.executable, '-c', BLOCKED_CORE % (CORE,)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the blocker works: importing the benchmarks themselves is refused
    assert 'refused: blocked: ghostnetv2_mm.benchmarks' in proc.stdout
