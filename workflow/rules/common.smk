# Config validation, the run plan, wildcard constraints and the input functions the rules share.
from pathlib import Path

from rmflow.config import validate_config
from rmflow.io import write_json
from rmflow.plan import GPU_PRESETS, RESULTS, Plan

validate_config(
    config,
    Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
    workflow.configfiles,
)
PLAN = Plan(config, workflow.configfiles)


wildcard_constraints:
    method=Plan.regex(PLAN.methods),
    base=Plan.regex(PLAN.bases),
    eval_set=Plan.regex(PLAN.eval_sets),
    dataset=Plan.regex(PLAN.datasets()),


def dataset_inputs(wildcards):
    return {"source": PLAN.local_inputs("datasets", wildcards.dataset)}


def _shell_safe(entry):
    # None would reach the shell as the string "None"; the CLI reads "" as "not set"
    return {key: ("" if value is None else value) for key, value in entry.items()}


def dataset_params(wildcards):
    return _shell_safe(config["datasets"][wildcards.dataset])


def tokenizer_corpus(wildcards):
    return f"{RESULTS}/data/prepared/{config['run']['train_dataset']}.parquet"


def tiny_spec(wildcards):
    return PLAN.tiny_spec(wildcards.base)


def run_spec(wildcards):
    return PLAN.run_spec(wildcards.method, wildcards.base)


def train_inputs(wildcards):
    inputs = {
        "spec": f"{RESULTS}/specs/runs/{wildcards.method}/{wildcards.base}.json",
        "data": f"{RESULTS}/data/prepared/{PLAN.dataset_of(wildcards.method)}.parquet",
    }
    if PLAN.is_tiny(wildcards.base):
        inputs["base"] = f"{RESULTS}/bases/{wildcards.base}"
    return inputs


def eval_inputs(wildcards):
    return {
        "model": f"{RESULTS}/models/{wildcards.method}/{wildcards.base}",
        "data": PLAN.local_inputs("eval_sets", wildcards.eval_set),
    }


def eval_params(wildcards):
    return _shell_safe(config["eval_sets"][wildcards.eval_set])
