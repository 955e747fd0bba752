"""The plan's checks: every name a config uses is defined, of the right kind, and planned, before any job exists.

Each check raises through ``plan.fail`` (an error naming the config files and the key), so an unknown method, an
undefined base model, a method on a base the run does not have or a data set of the wrong kind surfaces when the
Snakefile is read, before anything is submitted. ``check`` runs them in the order the config is read.
"""

from __future__ import annotations

import difflib
import logging
import os

from rmflow import methods
from rmflow.data.formats import FORMATS
from rmflow.errors import RmflowError
from rmflow.models.load import check_model_ref
from rmflow.plan.bases import SOURCES, check_gguf_source, is_named_template, named_templates

KIND_NAMES = {"pairs": "preference pairs", "steps": "step-labelled conversations", "attributes": "attribute ratings",
              "candidates": "best-of-N candidate sets", "rewardbench2": "RewardBench 2 rows"}

log = logging.getLogger(__name__)


def check(plan) -> None:
    for name in plan.config.get("methods") or {}:  # an entry whose name is a typo would be silently unused
        if name not in methods.available():
            close = difflib.get_close_matches(name, methods.available(), n=1)
            plan.fail(f"no method is called '{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                      + "; a method outside rmflow names its module (methods.<name>.module)", f"methods.{name}")
    for i, name in enumerate(plan.methods):
        check_method(plan, name, f"run.methods[{i}]")
    for name in plan.bases:
        check_base(plan, name)
    for name in plan.externals:
        check_released(plan, name)
    for name in plan.eval_sets:
        check_eval_set(plan, name)
    for method, base in plan.pairs:
        plan.method_options(method, base)  # each raises on an option its dataclass does not have
        plan.train_config(method, base)
        check_data(plan, method, base)
        check_requires(plan, method, base)
    check_bestofn(plan)
    check_rank(plan)


def defined(plan, section: str, name: str) -> dict:
    entries = plan.config.get(section, {})
    if name not in entries:
        plan.fail(f"'{name}' is not defined (defined: {', '.join(sorted(entries)) or 'none'})",
                  f"{section}.{name}")
    return entries[name]


def check_eval_set(plan, name: str) -> None:
    from rmflow.evaluate.eval_sets import check_choice

    entry = defined(plan, "eval_sets", name)
    try:
        check_choice(entry.get("benchmark", "rewardbench_v1"), entry.get("sections"))
    except RmflowError as exc:
        plan.fail(str(exc).removeprefix(f"field '{exc.field}': "), f"eval_sets.{name}.{exc.field}")


def check_method(plan, name: str, key: str) -> None:
    if name not in methods.available():
        plan.fail(f"unknown method '{name}' (available: {', '.join(methods.available())})", key)
    if methods.hook(plan.module(name), "EXTERNAL", False):
        plan.fail(f"'{name}' is not a training method: declare existing models under reward_models and pick "
                  "them with run.reward_models", key)
    # a method's bases: are planned where they meet run.base_models; a base defined but not in this run (a layer
    # that narrows run.base_models) is dropped and logged, so a new method joins every run without other edits
    listed = _listed_bases(plan, name)
    for base in listed:
        if base not in plan.config.get("base_models", {}):
            plan.fail(f"method '{name}' lists base '{base}', which is not a defined base model "
                      f"(base_models: {', '.join(plan.config.get('base_models', {}))})", f"methods.{name}.bases")
    dropped = [base for base in listed if base not in plan.bases]
    if listed and len(dropped) == len(listed):
        plan.fail(f"method '{name}' lists bases {', '.join(listed)}, none of which this run trains "
                  f"(run.base_models: {', '.join(plan.bases)})", f"methods.{name}.bases")
    if dropped:
        log.info("method %s: bases %s are not in run.base_models; not planned", name, ", ".join(dropped))


def check_data(plan, method: str, base: str) -> None:
    for name, kind in plan.datasets_of(method, base).items():
        entry = defined(plan, "datasets", name)
        have = FORMATS[entry.get("format", "standard")].kind
        if have != kind:
            plan.fail(f"method '{method}' reads {KIND_NAMES[kind]} (kind '{kind}') from data set '{name}', "
                      f"whose format '{entry.get('format', 'standard')}' gives {KIND_NAMES[have]} "
                      f"(kind '{have}')", f"datasets.{name}.format")


def check_requires(plan, method: str, base: str) -> None:
    """A method that reads another's outputs (ArmoRM: the BT model of the same base) needs that pair planned."""
    needs = methods.hook(plan.module(method), "requires", lambda config: [])(plan.method_options(method, base))
    for other in needs:
        if other not in plan.methods:
            plan.fail(f"method '{method}' reads the outputs of '{other}', which is not in run.methods"
                      + (f" (or not listed in only: add {other}:{base})" if plan.only is not None else ""),
                      "only" if plan.only is not None else "run.methods")
        if (other, base) not in plan.pairs:
            plan.fail(f"method '{method}' on base '{base}' reads the outputs of '{other}' on that base, which "
                      f"this run does not plan ('{other}' runs on: {', '.join(plan.bases_of(other))})",
                      f"methods.{other}.bases")


def check_bestofn(plan) -> None:
    cfg = plan.config.get("bestofn", {})
    for name in cfg.get("methods") or []:
        if name not in plan.scalar_methods():
            plan.fail(f"best-of-N method '{name}' is not a scalar method of this run "
                      f"({', '.join(plan.scalar_methods())})", "bestofn.methods")
    wanted = [(name, "candidates", "sets") for name in cfg.get("sets") or []]
    wanted += [(cfg["steps"], "steps", "steps")] if cfg.get("steps") else []
    for name, kind, key in wanted:
        entry = defined(plan, "datasets", name)
        if FORMATS[entry.get("format", "standard")].kind != kind:
            plan.fail(f"best-of-N {key} '{name}' must be {KIND_NAMES[kind]} (a format of kind '{kind}')",
                      f"bestofn.{key}")


def check_rank(plan) -> None:
    rank = plan.config.get("rank", {})
    if not rank.get("data") or (plan.only is not None and not plan.ranks()):  # ONLY left the ranked pair out
        return
    method = plan.rank_method()
    if method not in plan.methods:
        plan.fail(f"ranks with method '{method}', which is not in run.methods", "rank.method")
    if rank.get("base") and rank["base"] not in plan.bases:
        plan.fail(f"ranks with base '{rank['base']}', which is not in run.base_models", "rank.base")
    if (method, plan.rank_base()) not in plan.pairs:
        plan.fail(f"ranks with '{method}' on base '{plan.rank_base()}', a pair this run does not plan",
                  "rank.base")


def check_base(plan, name: str) -> None:
    entry = defined(plan, "base_models", name)
    given = [key for key in SOURCES if entry.get(key) is not None]
    if len(given) != 1:
        plan.fail("needs exactly one of 'model' (hub id or local directory), 'tiny' or 'gguf' "
                  f"(given: {', '.join(given) or 'none'})", f"base_models.{name}")
    if entry.get("model") is not None:
        try:
            check_model_ref(entry["model"])
        except RmflowError as exc:  # the file's own name stays in the message (a cut-short weights file)
            plan.fail(str(exc) if exc.file else str(exc).split(": ", 1)[-1], f"base_models.{name}.model")
    if entry.get("gguf") is not None:
        try:
            check_gguf_source(entry["gguf"])
        except RmflowError as exc:
            plan.fail(str(exc), f"base_models.{name}.gguf")
    if entry.get("chat_template") and "gguf" not in entry:
        plan.fail("chat_template is read only for GGUF bases (a hub or local model brings its tokenizer's)",
                  f"base_models.{name}.chat_template")
    template = entry.get("chat_template")
    if template and not is_named_template(template) and not os.path.isfile(os.path.expanduser(template)):
        plan.fail(f"'{template}' is neither a chat template shipped with rmflow ({', '.join(named_templates())})"
                  " nor a file", f"base_models.{name}.chat_template")


def check_released(plan, name: str) -> None:
    defined(plan, "reward_models", name)
    if name in plan.bases:
        plan.fail(f"reward model '{name}' has the name of a base model of this run; rename one",
                  f"reward_models.{name}")
    plan.released_config(name)


def _listed_bases(plan, method: str) -> list[str]:
    listed = plan.method_entry(method).get("bases")
    return list(listed) if listed is not None else []
