"""The transfer benchmark (protocol: docs/transfer.md; command line:
tools/transfer_benchmark.py).

``data``       dataset splits as ``Source`` objects and the image loader
``model``      backbone + pooling + linear layer, its parameters, MACs and latency
``protocols``  the linear probe and fine-tuning
``results``    the CSV rows (resume), the Markdown table and the plot
``run``        ``run_benchmark``: every (dataset, backbone, protocol) in turn
"""
from .data import MMPRETRAIN_DATASETS, Source, load_dataset_splits, load_digits_splits
from .model import BACKBONES, DEFAULT_BACKBONES, Classifier, build_model, measure_cost
from .protocols import PROTOCOLS, NonFiniteError, finetune, linear_probe
from .results import CSV_FIELDS, output_files, read_rows
from .run import run_benchmark

__all__ = ['MMPRETRAIN_DATASETS', 'Source', 'load_dataset_splits', 'load_digits_splits',
           'BACKBONES', 'DEFAULT_BACKBONES', 'Classifier', 'build_model', 'measure_cost',
           'PROTOCOLS', 'NonFiniteError', 'finetune', 'linear_probe', 'CSV_FIELDS',
           'output_files', 'read_rows', 'run_benchmark']
