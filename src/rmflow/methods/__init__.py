"""The method registry: one module per reward-model method, looked up by its config name.

Each module of this package is a method; each sub-package holds what a family of them shares (``pairwise``:
pair_pm, rrm, ssrm; ``steps``: prm, orm, orm_scalar; ``scalar``: bt, odin; ``frozen``: armo, tree). A method module
exposes everything in ``REQUIRED`` and may expose any hook in ``OPTIONAL``; the code outside this
package reads an optional hook only through ``hook()``, which refuses a name that is not listed, so this file is
the whole protocol. Importing this module loads no torch.

A method outside rmflow is registered from the config (``methods.<name>.module: package.module``): ``register``
puts it in ``RMFLOW_METHOD_MODULES``, so every job the workflow starts finds it the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import pkgutil
from types import ModuleType

from rmflow.errors import RmflowError

# the module that scores released reward models (run.reward_models: things to score, not trained); its EXTERNAL
# flag is set, and the plan, the leaderboard and the CLI reach it by this name only
RELEASED = "external"

REQUIRED = {
    "VERSION": "int, bumped whenever its results would change (written into every run spec, so Snakemake reruns)",
    "KIND": '"scalar" (a reward per response) or "pairwise" (P(chosen) per pair): picks tie rule and benchmarks',
    "Config": "a frozen dataclass of the method's own options, with the paper's defaults",
    "train": "train(spec, out_dir, data=None, init=None): train from a RunSpec, write a standard HF model directory",
    "load_scorer": "load_scorer(model_dir, device, batch_size): an object with score_pairs(rows) -> dict of arrays",
}
OPTIONAL = {
    # what the method reads
    "READS": 'the kind of rows its training set holds ("pairs" by default; None: it reads no training set)',
    "dataset_options": "dataset_options(config) -> {option: kind}: options that name further data sets to prepare",
    "transform": "transform(rows, spec) -> rows: its own data step (rule transform_data) before training",
    "extra_inputs": "extra_inputs(config, base, results) -> [path]: files its train step reads besides spec and data",
    "requires": "requires(config) -> [method]: methods whose outputs it reads (the plan checks they are in the run)",
    "HUB_MODELS": "((option, revision option), ...): options naming a hub model that rmflow hub-check looks up "
                  "(default: backbone, backbone_revision)",
    # how it is run
    "SETUP_ONLY": "True: it trains nothing; a local job writes its model directory (the judge)",
    "EXTERNAL": "True: scores reward models declared under reward_models; never a training method",
    "STEP_LEVEL": "True: its scorer reads a reward at every step (chat_probabilities): it is scored on ProcessBench",
    "EXPORT_HEAD": "int: its reward is this output of the saved *ForSequenceClassification; `rmflow export` writes "
                   "that head alone (num_labels 1) for vLLM/TRL/OpenRLHF; without it the method is served only",
    "final_model_dir": "final_model_dir(base, config, results) -> path: it has its own rules (SSRM's rounds, the one "
                       "method-owned rule file); its model lives there",
    "extra_targets": "extra_targets(base, results) -> [path]: outputs of its own rules that `all` asks for",
    "COMMAND": "an rmflow.options.Command: the `rmflow <name> ...` command its own rules call (SSRM's steps)",
    "STAGES": "names of its steps, run by the generic rules stage_<name> in order; the last writes the model",
    "stages": "stages(config) -> STAGES for one configuration (the tree fits its own probe only with its own data)",
    "stage_inputs": "stage_inputs(plan, method, base, config, stage) -> {name: path or hub id}: what a stage reads",
    "run_stage": "run_stage(stage, spec_path, inputs, out_dir): run one stage (rmflow stage)",
    "explain": "explain(model_dir, conversation, top_k) -> text: why a model scores a conversation (rmflow explain)",
    # what the cluster plan needs to know (rmflow plan)
    "SIZING": "{sequences_per_row, head, rows_factor, score, logit_positions} (sizing.jobs.DEFAULT_SIZING; "
              "another key is refused): its training and scoring shape",
    "sizing": "sizing(config) -> SIZING for one configuration",
    "sizing_jobs": "sizing_jobs(plan, base, config, builders) -> [Job]: the jobs its own rules schedule, built with "
                   "`builders` (rmflow.sizing.jobs, handed in: a method never imports the planner)",
}


def hook(module: ModuleType, name: str, default=None):
    """An optional hook of a method module, or ``default``; a name missing from OPTIONAL is a bug."""
    if name not in OPTIONAL:
        raise KeyError(f"'{name}' is not a method hook (rmflow.methods.OPTIONAL lists them)")
    return getattr(module, name, default)


def has_hook(module: ModuleType, name: str) -> bool:
    return hook(module, name) is not None


MODULES_ENV = "RMFLOW_METHOD_MODULES"  # name=package.module,... : methods registered from outside rmflow


def _registered() -> dict[str, str]:
    items = [item.partition("=") for item in os.environ.get(MODULES_ENV, "").split(",") if item]
    return {name: module for name, _, module in items}


def register(name: str, module: str, where: str = "methods") -> None:
    """A method module outside rmflow under ``name`` (for this process and every process it starts)."""
    if name in _builtin() and f"{__name__}.{name}" != module:
        raise RmflowError(f"'{name}' is a built-in method; give the outside module another name",
                          field=f"{where}.{name}.module")
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise RmflowError(f"cannot import method module '{module}' ({exc})", field=f"{where}.{name}.module") from exc
    modules = {**_registered(), name: module}
    os.environ[MODULES_ENV] = ",".join(f"{k}={v}" for k, v in sorted(modules.items()))


@functools.lru_cache(maxsize=1)
def _builtin() -> tuple[str, ...]:
    # scanned once per process: the Snakefile asks for ~900 methods while it builds the plan
    # a module is a method; a sub-package is a family's shared code (pairwise/, steps/, scalar/, frozen/)
    return tuple(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_") and not m.ispkg)


def available() -> list[str]:
    return sorted(set(_builtin()) | set(_registered()))


def get(name: str, where: str = "methods") -> ModuleType:
    if name not in available():
        raise RmflowError(f"unknown method '{name}' (available: {', '.join(available())})", field=where)
    module = importlib.import_module(_registered().get(name) or f"{__name__}.{name}")
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
