"""The runtimes an exported ONNX file is timed on: onnxruntime, OpenVINO and ncnn.

:func:`make_runner` turns one ONNX file into a zero-argument callable that runs it
once on a fixed input, on the runtime asked for, so that
:func:`~.onnx_profile.time_interleaved` can time files on every runtime the same
way (interleaved rounds).

* onnxruntime: a CPU session with all graph optimisations (:func:`session`);
* OpenVINO: the file compiled for the CPU in latency mode with ``threads``
  inference threads; the ``fp32`` precision pins ``INFERENCE_PRECISION_HINT=f32``
  (on CPUs with AVX-512 BF16 or AMX OpenVINO otherwise runs bf16 by default);
* ncnn: the file converted with pnnx (``pnnx FILE.onnx inputshape=[1,3,H,W]
  fp16=0``, on a copy of the file in a temporary folder: float32 weights; pnnx
  writes the input size into the graph, e.g. the gate resizes' target sizes, so a
  file is converted per size) and loaded with the
  storage precision asked for (:data:`NCNN_PRECISIONS`). ncnn has no batch
  dimension: batch 1 only.
"""
import functools
import hashlib
import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from ..deployment.ncnn import NCNN_PRECISIONS

#: Runtimes :func:`make_runner` knows.
RUNTIMES = ('onnxruntime', 'openvino', 'ncnn')

#: Precisions per runtime (onnxruntime and OpenVINO are timed in float32 only).
PRECISIONS = {'onnxruntime': ('fp32',), 'openvino': ('fp32',),
              'ncnn': tuple(NCNN_PRECISIONS)}

INSTALL_HINT = {'ncnn': 'pip install ncnn pnnx', 'openvino': 'pip install openvino',
                'onnxruntime': 'pip install onnxruntime'}


def session(path: str, threads: int = 1, profile_prefix: Optional[str] = None,
            optimized_path: Optional[str] = None):
    """An onnxruntime CPU session with all graph optimisations (the default level),
    ``threads`` intra-op threads and one inter-op thread.

    Args:
        path (str): The ONNX file.
        threads (int): Intra-op threads. Default: 1.
        profile_prefix (str, optional): Turn the profiler on, writing there.
        optimized_path (str, optional): Also write the optimised graph there.
    """
    import onnxruntime as ort
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f'threads={threads!r}: allowed: an int >= 1')
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    if optimized_path is not None:
        options.optimized_model_filepath = optimized_path
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def check_runtime(runtime: str, precision: str = 'fp32') -> None:
    """Raise ValueError for an unknown runtime / precision pair and ImportError
    (naming the pip command) when the runtime's Python package is missing."""
    if runtime not in RUNTIMES:
        raise ValueError(f'runtime={runtime!r}: allowed: {", ".join(RUNTIMES)}')
    if precision not in PRECISIONS[runtime]:
        raise ValueError(f'precision={precision!r} on {runtime}: allowed: '
                         f'{", ".join(PRECISIONS[runtime])}')
    modules = {'ncnn': ('ncnn', 'pnnx'), 'openvino': ('openvino',),
               'onnxruntime': ('onnxruntime',)}[runtime]
    for module in modules:
        try:
            __import__(module)
        except ImportError as exc:
            raise ImportError(f'{runtime} is not installed ({exc}); install it with: '
                              f'{INSTALL_HINT[runtime]}') from exc


def onnx_to_ncnn(onnx_path: str, prefix: str, size: Tuple[int, int]) -> Tuple[str, str]:
    """Convert ``onnx_path`` for a (1, 3, *size) input into ``prefix.param`` and
    ``prefix.bin`` (float32 weights) with the export's converter
    (:func:`ghostnetv2_mm.deployment.ncnn.onnx_to_ncnn`). Returns the two paths."""
    from ..deployment.ncnn import onnx_to_ncnn as convert
    param, weights = prefix + '.param', prefix + '.bin'
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    convert(onnx_path, (1, 3, *size), param, weights)
    return param, weights


def ncnn_blobs(param_path: str) -> Tuple[List[str], List[str]]:
    """The input blobs (of ``Input`` layers) and output blobs (produced, never
    consumed) of an ncnn ``.param`` file, in file order."""
    with open(param_path, 'rb') as f:
        data = f.read()
    if data.split(b'\n', 1)[0].strip() != b'7767517':
        raise ValueError(f'{param_path!r}: not an ncnn text param file (magic 7767517)')
    lines = data.decode('utf-8', errors='replace').split('\n')
    inputs, produced, consumed = [], [], set()
    for line in lines[2:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        kind, n_in, n_out = fields[0], int(fields[2]), int(fields[3])
        bottoms = fields[4:4 + n_in]
        tops = fields[4 + n_in:4 + n_in + n_out]
        consumed.update(bottoms)
        produced.extend(tops)
        if kind == 'Input':
            inputs.extend(tops)
    return inputs, [b for b in produced if b not in consumed]


def ncnn_net(param: str, weights: str, threads: int = 1, precision: str = 'fp32'):
    """An ``ncnn.Net`` loaded from ``param`` / ``weights`` with ``threads`` threads
    and the :data:`NCNN_PRECISIONS` flags of ``precision``."""
    from ..deployment.ncnn import cpu_net
    check_runtime('ncnn', precision)
    net = cpu_net(threads, precision)
    if net.load_param(param) != 0 or net.load_model(weights) != 0:
        raise RuntimeError(f'ncnn could not load {param} / {weights}')
    return net


def run_ncnn(net, blobs: Tuple[List[str], List[str]], x: np.ndarray) -> List[np.ndarray]:
    """Run ``net`` on a (1, C, H, W) array; returns each output blob with a leading
    batch dimension of 1."""
    import ncnn
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f'input shape {x.shape}: ncnn runs one (1, C, H, W) image')
    inputs, outputs = blobs
    with net.create_extractor() as ex:
        ex.input(inputs[0], ncnn.Mat(np.ascontiguousarray(x[0])))
        results = []
        for name in outputs:
            status, mat = ex.extract(name)
            if status != 0:
                raise RuntimeError(f'ncnn could not compute blob {name!r} ({status})')
            results.append(np.array(mat)[None])
    return results


def make_runner(runtime: str, onnx_path: str, x: np.ndarray, *, threads: int = 1,
                precision: str = 'fp32', workdir: Optional[str] = None
                ) -> Callable[[], object]:
    """A callable that runs ``onnx_path`` once on ``x`` on ``runtime``.

    Args:
        runtime (str): One of :data:`RUNTIMES`.
        onnx_path (str): The ONNX file (one image input).
        x (np.ndarray): The (N, 3, H, W) float32 input (ncnn: N = 1; the file is
            converted for this H, W).
        threads (int): Threads of the runtime. Default: 1.
        precision (str): One of ``PRECISIONS[runtime]``. Default: ``'fp32'``.
        workdir (str, optional): Where ncnn conversions are written, as
            ``STEM.KEY.HxW.ncnn.param`` / ``.bin`` (KEY: a hash of the file's path, size
            and time; an existing pair is reused); next to the ONNX file when not given.
    """
    check_runtime(runtime, precision)
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f'threads={threads!r}: allowed: an int >= 1')
    if runtime == 'onnxruntime':
        sess = session(onnx_path, threads)
        return functools.partial(sess.run, None, {sess.get_inputs()[0].name: x})
    if runtime == 'openvino':
        import openvino as ov
        core = ov.Core()
        config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY',
                  'NUM_STREAMS': 1, 'INFERENCE_PRECISION_HINT': 'f32'}
        compiled = core.compile_model(core.read_model(onnx_path), 'CPU', config)
        request = compiled.create_infer_request()
        return functools.partial(request.infer, {0: x})
    h, w = x.shape[-2:]
    # one conversion per file version and size: files of the same name from other
    # folders, or rewritten since, get their own
    stat = os.stat(onnx_path)
    key = hashlib.sha1(f'{os.path.abspath(onnx_path)}|{stat.st_size}|{stat.st_mtime_ns}'
                       .encode()).hexdigest()[:10]
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    prefix = os.path.join(workdir or os.path.dirname(os.path.abspath(onnx_path)),
                          f'{stem}.{key}.{h}x{w}.ncnn')
    if not (os.path.isfile(prefix + '.param') and os.path.isfile(prefix + '.bin')):
        onnx_to_ncnn(onnx_path, prefix, (h, w))
    net = ncnn_net(prefix + '.param', prefix + '.bin', threads, precision)
    blobs = ncnn_blobs(prefix + '.param')
    return functools.partial(run_ncnn, net, blobs, x)
