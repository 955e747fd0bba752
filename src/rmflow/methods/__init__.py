"""The method registry: one module per reward-model method, looked up by its config name.

A method module exposes:
- ``VERSION``: bumped whenever its results would change (written into every run spec, so Snakemake reruns);
- ``KIND``: ``"scalar"`` (a reward per response) or ``"pairwise"`` (P(chosen) per pair), which picks the tie rule;
- ``Config``: a frozen dataclass of the method's own options, with paper defaults;
- ``train(spec, out_dir, log_path)``: train from a ``RunSpec`` and write a standard HF model directory;
- ``load_scorer(model_dir)``: an object with ``score_pairs(rows) -> dict of arrays`` for evaluation.

Nothing outside this package branches on a method's name. Importing this module loads no torch.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from types import ModuleType

from rmflow.errors import RmflowError

REQUIRED = ("VERSION", "KIND", "Config", "train", "load_scorer")


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str, where: str = "methods") -> ModuleType:
    if name not in available():
        raise RmflowError(f"unknown method '{name}' (available: {', '.join(available())})", field=where)
    module = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in REQUIRED if not hasattr(module, attr)]
    if missing:  # a bug in the method module, not a user mistake
        raise TypeError(f"method module {name} lacks {missing}")
    return module


def method_config(name: str, options: dict | None, where: str = "methods"):
    """Build the method's Config from config values, rejecting unknown keys by name."""
    module = get(name, where)
    options = dict(options or {})
    known = {f.name for f in dataclasses.fields(module.Config)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise RmflowError(f"unknown option(s) {unknown} for method '{name}' (known: {sorted(known) or 'none'})",
                          field=f"{where}.{name}.options")
    try:
        return module.Config(**options)
    except (TypeError, ValueError) as exc:
        raise RmflowError(str(exc), field=f"{where}.{name}.options") from exc
