"""BT with a fault injected where a real multi-process training has been seen to die (docs/tests.md: a ZeRO-3
worker aborting in teardown after saving), registered from outside rmflow (``RMFLOW_METHOD_MODULES``).

``TOY_FAULT=after_seal``: rank 1 aborts (SIGABRT, as "terminate called without an active exception" does) at
interpreter exit, after the model is sealed. ``TOY_FAULT=before_seal``: every rank aborts when the loop has
finished and checkpointed but before the model is saved (rank 0 writes the model, so it must die too, or the test
would race it). Unset: plain BT.
"""

from __future__ import annotations

import atexit
import os

from rmflow.methods.bt import KIND, VERSION, Config, load_scorer  # noqa: F401
from rmflow.methods.bt import train as bt_train

FAULT = "TOY_FAULT"


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def train(spec, out_dir, data=None, init=None):
    fault = os.environ.get(FAULT)
    if fault == "before_seal":
        from rmflow.train import save

        def abort_instead_of_saving(*args, **kwargs):
            os.abort()

        save.save_run = abort_instead_of_saving
    bt_train(spec, out_dir, data=data, init=init)
    if fault == "after_seal" and _rank() == 1:
        atexit.register(os.abort)
