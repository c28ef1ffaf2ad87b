import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import ghostnetv2_mm  # noqa: E402,F401  (registers the modules, installs safe loading)

# Two threads where there are two cores (what CI has); GHOSTNETV2_TEST_THREADS forces
# a count (tools/dev/test_cpus.py runs the numerics tests on 1 and on 2 threads).
torch.set_num_threads(int(os.environ.get('GHOSTNETV2_TEST_THREADS')
                          or min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _same_threads():
    """A tool run in-process with --threads leaves torch's thread count changed; the
    next tests would compute with other float rounding (which decides near-ties)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Nothing is downloaded at test time: a download from anywhere but a server the
    test itself runs on 127.0.0.1 fails the test."""
    original = torch.hub.download_url_to_file

    def loopback_only(url, *args, **kwargs):
        if not url.startswith('http://127.0.0.1:'):
            pytest.fail(f'a test tried to download {url}')
        return original(url, *args, **kwargs)

    monkeypatch.setattr(torch.hub, 'download_url_to_file', loopback_only)


# ---- Data for the tiny runs of the real configs (helpers.tiny_*_config) ------------

@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    """4 training and 2 validation 64x64 ToyShapes images, COCO and ADE20K formats."""
    from ghostnetv2_mm.datasets.toy_shapes import make_toy_shapes
    root = str(tmp_path_factory.mktemp('toy_shapes'))
    make_toy_shapes(root, num_train=4, num_val=2, size=(64, 64), max_objects=2,
                    radius=(8, 20), seed=1)
    return root


@pytest.fixture(autouse=True)
def _log_handlers_on_open_streams():
    """mmengine's loggers outlive a test; a handler still bound to a stream that
    pytest's capture has closed would print '--- Logging error ---' (with a
    traceback) into the output of a later test that reads stderr."""
    import logging

    from mmengine.logging import MMLogger
    loggers = [logging.getLogger()] + list(MMLogger._instance_dict.values())
    for logger in loggers:
        for handler in logger.handlers:
            if (isinstance(handler, logging.StreamHandler)
                    and not isinstance(handler, logging.FileHandler)
                    and getattr(handler.stream, 'closed', False)):
                handler.stream = sys.stderr  # (setStream would flush the closed one)
    yield
