"""Test support (not a test module): a training hook that SIGKILLs its own process
at a known point, for the kill-and-resume test in ``tests/test_tools.py``.

The config names it with ``custom_imports=dict(imports=[..., 'kill_hook'])`` and
``custom_hooks=[dict(type='SigkillAfterCheckpoint', iteration=k)]``; the training
process needs ``tests/`` on its ``PYTHONPATH``.
"""
import os
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class SigkillAfterCheckpoint(Hook):
    """SIGKILL the training process right after iteration ``iteration``'s
    checkpoint is completely written: the lowest priority runs after
    CheckpointHook (``VERY_LOW``), whose write and ``last_checkpoint`` update are
    synchronous. SIGKILL, like a crash or the OOM killer, runs no clean-up."""

    priority = 'LOWEST'

    def __init__(self, iteration: int):
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        # runner.iter counts the iterations finished before this one
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)
