"""Deployment: whole detectors, segmentors, classifiers and backbones as ONNX files
(mmdeploy's conventions, no mmdeploy needed), checked and run with onnxruntime, and
INT8 post-training quantisation.

``build_model``, ``wrap_for_export``, ``export_onnx``  (export.py)
``compare``                   ONNX (onnxruntime) against the PyTorch ``predict`` (verify.py)
``OnnxPredictor``             preprocess an image as the config does, run, draw (runtime.py)
``quantize_int8``             static QDQ INT8 with onnxruntime (quantize.py)
``evaluate_detections``       a predictor's box AP with the config's evaluator (evaluation.py)
"""
from .evaluation import evaluate_detections
from .export import (DEFAULT_OPSET, build_model, export_onnx, onnx_session,
                     prepare_for_export, run_onnx, wrap_for_export)
from .nms import batched_nms
from .quantize import quantize_int8, quantized_node_counts
from .verify import compare, describe
from .wrappers import (BackboneExport, ClassifierExport, DenseDetectorExport,
                       SegmentorExport, TwoStageDetectorExport, paste_masks)

__all__ = [
    'DEFAULT_OPSET', 'build_model', 'evaluate_detections', 'export_onnx', 'onnx_session',
    'prepare_for_export', 'run_onnx', 'wrap_for_export', 'batched_nms',
    'quantize_int8', 'quantized_node_counts', 'compare', 'describe', 'BackboneExport',
    'ClassifierExport', 'DenseDetectorExport', 'SegmentorExport', 'TwoStageDetectorExport',
    'paste_masks'
]
