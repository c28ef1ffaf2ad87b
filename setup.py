"""ghostnetv2-mm: GhostNetV2 as an OpenMMLab 2.x backbone."""
import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
VERSION = re.search(r"__version__ = '([^']+)'",
                    (HERE / 'ghostnetv2_mm' / 'version.py').read_text()).group(1)


class BuildPyWithMim(build_py):
    """Also ship the configs and the model index in the built package, as
    ``ghostnetv2_mm/.mim/{configs,model-index.yml}`` (the metafiles are in configs/),
    as OpenMMLab packages do: an installed package finds its models by name from any
    working directory (``ghostnetv2_mm.model_hub``). An editable install reads them
    from the repository instead."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = Path(self.build_lib) / 'ghostnetv2_mm' / '.mim'
        if mim.exists():  # a build folder from an earlier build: no stale configs
            shutil.rmtree(mim)
        shutil.copytree(HERE / 'configs', mim / 'configs',
                        ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
        shutil.copy2(HERE / 'model-index.yml', mim / 'model-index.yml')


setup(
    name='ghostnetv2-mm',
    version=VERSION,
    description='GhostNetV2 (DFC attention) backbone for mmdet, mmseg and mmpretrain',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8')
    if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.8',
    packages=find_packages(include=['ghostnetv2_mm', 'ghostnetv2_mm.*']),
    # The package itself imports only these three, so it loads in a detection-only or
    # segmentation-only environment. mmcv is built from source by tools/install.sh.
    # torch >= 2.5: safe loading allows (object, "module.name") pairs there
    # (torch.serialization.add_safe_globals / safe_globals), which reading mmengine's
    # checkpoints with weights_only=True needs. Tested with torch 2.14.1.
    install_requires=['torch>=2.5', 'mmengine>=0.10.0', 'mmcv>=2.0.0,<2.2.0'],
    extras_require={
        'det': ['mmdet==3.3.0'],
        'seg': ['mmsegmentation==1.2.2', 'ftfy', 'regex'],
        'cls': ['mmpretrain==1.2.0'],
        'tests': ['pytest', 'hypothesis', 'timm', 'onnx', 'onnxruntime', 'modelindex',
                  'pnnx', 'ncnn'],
        # ONNX export and runtimes; ncnn (mobile) with pnnx, its converter
        'deploy': ['onnx', 'onnxruntime', 'openvino', 'pnnx', 'ncnn'],
    },
    cmdclass={'build_py': BuildPyWithMim},
    zip_safe=False,
)
