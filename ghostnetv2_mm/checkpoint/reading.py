"""The one checkpoint reader: local files, URLs and mmengine's other schemes.

* a local path is read as data only (:func:`~.safe_io.load_checkpoint_file`);
* an ``http(s)://`` URL is downloaded once into torch hub's cache
  (``torch.hub.get_dir()/checkpoints/<file name>``, i.e. ``~/.cache/torch/hub/checkpoints``
  unless ``TORCH_HOME`` says otherwise: the cache mmengine and torchvision use) and read
  from there afterwards, as data only. A download that fails leaves nothing in the
  cache; a downloaded file that cannot be read is removed from the cache, so no later
  run trusts it. Offline, the error names the URL and the cache path where a copy
  placed by hand is found;
* any other prefix that mmengine's ``CheckpointLoader`` knows (``open-mmlab://``,
  ``torchvision://``, ``s3://``, ...) goes to mmengine's loader, which reads with
  torch's default ``weights_only=True`` (torch >= 2.6).
"""
import os
import os.path as osp
from urllib.error import URLError
from urllib.parse import urlparse

from .safe_io import CheckpointError, load_checkpoint_file

TRAIN_FROM_SCRATCH_HINT = ('To train from scratch instead, set the backbone\'s '
                           'init_cfg=None (e.g. --cfg-options model.backbone.init_cfg=None).')


def url_cache_path(url: str) -> str:
    """Where :func:`read_checkpoint` keeps (and looks for) the file of ``url``."""
    import torch
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'invalid checkpoint URL {url!r}: it names no file')
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def _download(url: str, path: str) -> None:
    import torch
    os.makedirs(osp.dirname(path), exist_ok=True)
    try:
        # Writes to a temporary file next to ``path`` and renames it when complete;
        # on any error the temporary file is removed.
        torch.hub.download_url_to_file(url, path, progress=os.isatty(2))
    except (URLError, OSError, ValueError) as exc:
        raise CheckpointError(
            f'cannot download checkpoint {url!r} ({type(exc).__name__}: {exc}). Without '
            f'internet access, download it on another machine and place it at {path!r} '
            f'(it is then read from there), or pass a local path instead of the URL. '
            + TRAIN_FROM_SCRATCH_HINT) from None
    except Exception as exc:  # http.client.IncompleteRead and other transfer errors
        raise CheckpointError(f'download of checkpoint {url!r} failed ({type(exc).__name__}: '
                              f'{exc}); nothing was kept in the cache, try again') from None


def _read_url(url: str, map_location):
    from mmengine.dist import barrier, get_dist_info
    path = url_cache_path(url)
    rank, world_size = get_dist_info()
    downloaded = False
    # In distributed runs, rank 0 downloads and the others wait for it.
    if rank == 0 and not osp.isfile(path):
        _download(url, path)
        downloaded = True
    if world_size > 1:
        barrier()
    try:
        return load_checkpoint_file(path, map_location)
    except CheckpointError as exc:
        if downloaded:  # never leave a file that later runs would trust
            os.remove(path)
            raise CheckpointError(f'the file downloaded from {url!r} cannot be read and was '
                                  f'removed from the cache ({exc})') from None
        raise CheckpointError(f'{exc}. It is the cached copy of {url!r}: delete it to '
                              'download it again') from None


def read_checkpoint(source, map_location='cpu'):
    """Read a checkpoint from a local path, an ``http(s)://`` URL or another mmengine
    scheme, as data only. Raises FileNotFoundError or :class:`CheckpointError` with a
    message that says what to do."""
    source = os.fspath(source)
    if source.startswith(('http://', 'https://')):
        return _read_url(source, map_location)
    if '://' in source:
        from mmengine.runner.checkpoint import CheckpointLoader
        try:
            return CheckpointLoader.load_checkpoint(source, map_location=map_location)
        except Exception as exc:  # noqa: BLE001 - any failure: say which file
            raise CheckpointError(f'cannot read checkpoint {source!r} '
                                  f'({type(exc).__name__}: {exc})') from None
    if not osp.isfile(source):
        raise FileNotFoundError(f'checkpoint not found: {source!r}. '
                                + TRAIN_FROM_SCRATCH_HINT)
    return load_checkpoint_file(source, map_location)
