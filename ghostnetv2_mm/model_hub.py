"""The GhostNet-family ImageNet classifiers in mmpretrain's model hub, by name::

    import ghostnetv2_mm  # or custom_imports=dict(imports=['ghostnetv2_mm'])
    from mmpretrain import get_model, list_models
    list_models('*ghost*')
    model = get_model('ghostnetv2-1.0x_8xb128_in1k', pretrained=True)

``import ghostnetv2_mm`` calls :func:`register_model_hub`. With mmpretrain installed it
registers the models of the classifiers' metafile (``configs/metafile.yml``: GhostNetV2
1.0x/1.3x/1.6x, GhostNet V1 1.0x, GhostNetV3 1.0x) with mmpretrain's
``ModelHub.register_model_index``; nothing else of mmpretrain changes. Their weights are
the official release files: mmengine's ``CheckpointLoader`` gets a loader for exactly
those URLs, which reads them with this project's reader
(:func:`ghostnetv2_mm.checkpoint.read_checkpoint`: downloaded once into torch hub's
cache, read as data only, and offline an error that names the URL and the cache path
where a copy placed by hand is found). Every other URL loads as before.
``get_model(NAME, pretrained=PATH)`` of these names reads a local file with the same
reader first, so a file that is no checkpoint is reported in this project's words;
other names go to mmpretrain unchanged. Without mmpretrain nothing is registered.

The configs and metafiles are found in the repository (a clone or an editable install:
``configs/`` and ``model-index.yml`` next to the package) or else in the package's
``.mim/`` folder, where ``setup.py`` copies them when it builds the package.
"""
import functools
import importlib.util
import os
import os.path as osp
import re
import warnings
from typing import List

PACKAGE_DIR = osp.dirname(osp.abspath(__file__))
MODEL_INDEX = 'model-index.yml'
# The ImageNet classifiers: what the hub registers. The other metafiles that
# model-index.yml imports describe detection, segmentation and transfer configs, which
# are not mmpretrain models.
HUB_METAFILE = osp.join('configs', 'metafile.yml')


def resource_root() -> str:
    """The folder that holds ``configs/`` and ``model-index.yml``: the repository when
    the package is imported from a clone, else the installed package's ``.mim/``."""
    source = osp.dirname(PACKAGE_DIR)
    if all(osp.isfile(osp.join(source, name)) for name in ('setup.py', MODEL_INDEX)):
        return source
    return osp.join(PACKAGE_DIR, '.mim')


def hub_models(root: str = None) -> list:
    """The models (modelindex ``Model`` objects, collection metadata merged) that
    :func:`register_model_hub` registers, read from ``root`` (default:
    :func:`resource_root`)."""
    from modelindex.load_model_index import load
    path = osp.join(root or resource_root(), HUB_METAFILE)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'the metafile of the GhostNet classifiers is missing: {path!r} (a package '
            'built without its configs? Build it with this repository\'s setup.py)')
    index = load(path)
    index.build_models_with_collections()
    return list(index.models)


def load_from_official_release(filename: str, map_location=None):
    """mmengine ``CheckpointLoader`` loader of the official weight URLs (the name's
    part after ``load_from_`` is what mmengine logs as the backend)."""
    from .checkpoint import read_checkpoint
    return read_checkpoint(filename, map_location)


def _register_weight_loader(urls) -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    for url in urls:
        try:
            # exactly this URL; mmengine tries its prefixes in reverse lexicographic
            # order, so this one comes before its generic 'https://'
            CheckpointLoader.register_scheme(re.escape(url) + '$',
                                             load_from_official_release)
        except KeyError:  # registered before (by an earlier call)
            pass


def _check_local_weights(names) -> None:
    """Make mmpretrain's ``get_model(NAME, pretrained=PATH)`` read a local ``PATH``
    with this project's reader first when NAME is one of ``names`` (this project's
    classifiers), so that a file that is no checkpoint is refused in the project's
    words (which file, what it is) instead of torch's raw UnpicklingError advising
    ``weights_only=False``. Every other call goes to mmpretrain's function unchanged.
    The file is then read again by mmpretrain as before: reading a classifier's few
    MB twice buys mmpretrain's own loading path untouched."""
    import mmpretrain
    import mmpretrain.apis
    import mmpretrain.apis.model as api
    original = api.get_model
    if hasattr(original, '_ghostnetv2_mm_names'):  # wrapped by an earlier call
        original._ghostnetv2_mm_names.update(names)
        return
    ours = set(names)

    @functools.wraps(original)
    def get_model(model, pretrained=False, *args, **kwargs):
        if (isinstance(model, str) and model.lower() in ours
                and isinstance(pretrained, (str, os.PathLike))
                and '://' not in os.fspath(pretrained)):
            from .checkpoint import read_checkpoint
            read_checkpoint(pretrained)  # raises FileNotFoundError / CheckpointError
        return original(model, pretrained, *args, **kwargs)

    get_model._ghostnetv2_mm_names = ours
    for module in (api, mmpretrain.apis, mmpretrain):
        if getattr(module, 'get_model', None) is original:
            module.get_model = get_model


def register_model_hub() -> List[str]:
    """Register the GhostNet ImageNet classifiers in mmpretrain's ``ModelHub`` (see the
    module docstring). Idempotent: a second call registers nothing more.

    Returns:
        list[str]: The registered names (lower case, as ``list_models`` lists them);
        empty when mmpretrain is not installed, or when it cannot be imported or the
        names are taken by other models (both with a warning).
    """
    if importlib.util.find_spec('mmpretrain') is None:
        return []
    try:
        from mmpretrain.apis.model import ModelHub
        models = hub_models()
    except Exception as exc:  # noqa: BLE001 - a broken mmpretrain must not break the import
        warnings.warn('ghostnetv2_mm: the GhostNet classifiers are not registered in '
                      f"mmpretrain's model hub ({type(exc).__name__}: {exc})")
        return []
    names = [model.name.lower() for model in models]
    registered = [name for name in names if ModelHub.has(name)]
    if registered and registered != names:
        warnings.warn('ghostnetv2_mm: the GhostNet classifiers are not registered in '
                      f"mmpretrain's model hub: {registered} are taken by other models")
        return []
    if not registered:
        root = resource_root()
        ModelHub.register_model_index(osp.join(root, HUB_METAFILE), config_prefix=root)
    _register_weight_loader(model.weights for model in models if model.weights)
    _check_local_weights(names)
    return names
