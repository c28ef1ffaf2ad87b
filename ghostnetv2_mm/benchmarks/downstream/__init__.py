"""The downstream benchmark (tools/downstream_benchmark.py; docs/downstream.md): the
same detection or segmentation config trained and tested with every backbone of a
catalogue, swapped in with the config's taps and output stride.

``catalogue``  the backbones by name: implementations, taps, dilation, ImageNet URLs
``config``     a config's taps, the swapped backbone, necks and heads rewired, the
               schedule shortened, the data root, the test size and metrics
``results``    the CSV (resume), the Markdown table and the plot
``run``        ``run_downstream_benchmark``: every (config, backbone, seed) in turn
"""
from .catalogue import BACKBONES, Backbone, Build, dilate, get_backbone
from .config import ConfigError, Taps, rewire, shorten_schedule, swap_backbone, taps_of
from .results import CSV_FIELDS, PLOT
from .run import BenchmarkError, INITS, output_files, run_downstream_benchmark

__all__ = ['BACKBONES', 'Backbone', 'Build', 'dilate', 'get_backbone', 'ConfigError',
           'Taps', 'rewire', 'shorten_schedule', 'swap_backbone', 'taps_of', 'CSV_FIELDS',
           'PLOT', 'BenchmarkError', 'INITS', 'output_files', 'run_downstream_benchmark']
