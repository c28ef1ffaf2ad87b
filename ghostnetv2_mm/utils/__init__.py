from .complexity import COUNTING, count_macs, count_parameters, count_used_parameters

__all__ = ['COUNTING', 'count_macs', 'count_parameters', 'count_used_parameters']
