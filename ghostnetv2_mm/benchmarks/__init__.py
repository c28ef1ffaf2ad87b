"""Measuring code behind the benchmark tools (imports nothing until a module is used).
The plugin's core (models, checkpoint, model_hub, deployment) never imports it.

``catalogue``       the one list of networks every benchmark compares: name,
                    implementation, weights, top-1 and their sources
``timing``          interleaved rounds, percentiles, peak memory: every tool's timing
``timm_reference``  timm's GhostNet family: names, layer taps, trunk and feature wrappers
``speed``           backends, peers, compute bound (tools/analysis/benchmark.py)
``speed_report``    its table, CSV and plot
``onnx_profile``    onnxruntime's op-type breakdown, timm peers exported alike
                    (tools/analysis/onnx_profile.py)
``runtimes``        one exported file run on onnxruntime, OpenVINO or ncnn (pnnx
                    conversion; fp32 / fp16 / bf16 storage) for onnx_profile's timing
``transfer``        the transfer protocol: data, linear probe, fine-tuning, reports
                    (tools/transfer_benchmark.py)
``downstream``      a detection / segmentation config with each backbone swapped in:
                    taps per network, rewiring, runs, reports (tools/downstream_benchmark.py)
``report``          what the benchmarks' reports share: the growing CSV, panel plots
``int8``            INT8 against float32 with onnxruntime (tools/analysis/int8_study.py)
``gpu``             GPU training and inference throughput (tools/analysis/gpu_benchmark.py)

Imports flow one way: tools -> ``benchmarks`` -> preflight, deployment, models,
checkpoint, utils, errors.
"""
