# Config validation, the run plan, wildcard constraints and the input functions the rules share.
import json
import shlex
import sys
from pathlib import Path

from rmflow.config import has_recipe_layer, load_config, resolve_shipped_files, validate_config
from rmflow.data.samples import SAMPLES
from rmflow.io import command_json
from rmflow.plan import GPU_PRESETS, RESULTS, Plan, paths, use_workflow_source

# A recipe layer (`layer: recipe`, config/paper.yaml) replaces the recipe sections of the layers before it instead
# of merging into them; Snakemake merged them, so the config is rebuilt from the same layers in Snakemake's order:
# the Snakefile's configfile, each --configfile, then --config (rmflow.config.RECIPE_SECTIONS).
_cli_files = [str(f) for f in workflow.config_settings.configfiles]
_workflow_files = [str(f) for f in workflow.configfiles if str(f) not in _cli_files]
if has_recipe_layer(_workflow_files + _cli_files):
    _layered = load_config(
        *_workflow_files,
        *_cli_files,
        overrides=dict(workflow.config_settings.config),
        schema_path=Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
    )
    config.clear()
    config.update(_layered)
validate_config(
    config,
    Path(workflow.current_basedir) / "../schemas/config.schema.yaml",
    workflow.configfiles,
)
resolve_shipped_files(config, workflow.basedir)  # config/deepspeed/*.json from any --directory
PLAN = Plan(config, workflow.configfiles)
# Jobs run `python -m rmflow`, i.e. this workflow's own source (put first on PYTHONPATH here, which every job
# inherits, on the cluster too) through the interpreter of the job's environment (its conda env under --sdm conda,
# else the python on PATH). No `rmflow` executable found on PATH can stand in for it, and a package missing from an
# env file fails the job that needs it.
use_workflow_source(Path(workflow.basedir) / "src")
if PLAN.skipped_evaluations():  # said, never silently dropped
    _why = "RewardBench 2: scalar models only; ProcessBench: step-level models only"
    print(
        f"rmflow: not evaluated ({_why}): " + ", ".join(f"{m} on {e}" for e, m in PLAN.skipped_evaluations()),
        file=sys.stderr,
    )


wildcard_constraints:
    method=Plan.regex(PLAN.methods + PLAN.setup_methods()),
    base=Plan.regex(PLAN.bases + PLAN.externals),
    built=Plan.regex(PLAN.built_names()),
    eval_set=Plan.regex(PLAN.eval_sets),
    dataset=Plan.regex(PLAN.datasets()),
    set=Plan.regex(config.get("bestofn", {}).get("sets") or []),
    k=r"\d+",
    shard=r"\d+",


SAMPLE_FILES = [name for name in SAMPLES if name.endswith(".jsonl")]
# released reward models' published numbers (the leaderboard's published block): this workflow's own table unless
# the config names another
PUBLISHED_TABLE = config["leaderboard"].get("published") or str(Path(workflow.basedir) / "config/published.yaml")


def gpus_asked(wildcards, resources):
    # the GPUs per node this job's resources request (gres gpu:a100:4, or the executor's gpu); 0 on a laptop
    from rmflow.devices import gpus_in_request

    return gpus_in_request(getattr(resources, "gres", None), getattr(resources, "gpu", None))


def sample_sizes(wildcards):
    return " ".join(f"{k}={v}" for k, v in config["samples"]["sizes"].items())


def dataset_inputs(wildcards):
    return {"source": PLAN.local_inputs("datasets", wildcards.dataset)}


def _shell_safe(entry):
    # None would reach the shell as the string "None"; the CLI reads "" as "not set"
    return {key: ("" if value is None else value) for key, value in entry.items()}


def dataset_params(wildcards):
    entry = config["datasets"][wildcards.dataset]
    where = " ".join(f"{k}={v}" for k, v in (entry.get("where") or {}).items())
    path = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
    # a list of paths is a mixture, read in order; quoted here, as the rule cannot quote a list element by element
    return {**_shell_safe(entry), "where": where, "data_dir": entry.get("data_dir") or "", "sources": shlex.join(path)}


def tokenizer_corpus(wildcards):
    # only tiny bases train a tokenizer (on the run's training set); GGUF bases bring theirs
    if "tiny" not in PLAN.built_spec(wildcards.built):
        return []
    return PLAN.prepared(config["run"]["train_dataset"])


# The small files the DAG itself decides (run and base specs, the config used, the eval-set flag) are written by shell
# rules handing the value, as one line of JSON, to `rmflow write-json`: a `run:` rule is executed by a whole snakemake
# subprocess per job (Snakemake 9 spawns one for every run: job: ~4 s of CPU, and ~10 s more where a SLURM client
# cannot reach a controller, for a 2 KB file).


def built_spec_data(wildcards):
    return command_json(PLAN.built_spec(wildcards.built), f"base spec {wildcards.built}")


def run_spec_data(wildcards):
    return command_json(
        PLAN.run_spec(wildcards.method, wildcards.base),
        f"run spec {wildcards.method}/{wildcards.base}",
    )


def base_inputs(wildcards):
    base = wildcards.base
    return [PLAN.base_model_ref(base)] if base in PLAN.bases and PLAN.is_built(base) else []


def prepared_data(wildcards):
    return PLAN.prepared(PLAN.dataset_of(wildcards.method, wildcards.base))


def train_inputs(wildcards):
    return {
        "spec": paths.path("run_spec", method=wildcards.method, base=wildcards.base),
        "data": PLAN.train_data(wildcards.method, wildcards.base) if PLAN.reads_data(wildcards.method) else [],
        "base": base_inputs(wildcards),
        "extra": PLAN.extra_train_inputs(wildcards.method, wildcards.base),
    }


def eval_set_inputs(wildcards):
    return {"data": PLAN.local_inputs("eval_sets", wildcards.eval_set)}


def eval_inputs(wildcards):
    return {
        "model": PLAN.model_dir(wildcards.method, wildcards.base),
        "rows": PLAN.prepared_eval(wildcards.eval_set),
    }


def eval_params(wildcards):
    entry = config["eval_sets"][wildcards.eval_set]
    revision = entry.get("revision")

    def words(value):  # a list option is several shell words, quoted here as the rule cannot quote them one by one
        return shlex.join(value if isinstance(value, list) else [value])

    return {
        **_shell_safe(entry),
        "benchmark": PLAN.benchmark_of(wildcards.eval_set),
        "sections": entry.get("sections") or "",
        "sources": words(entry["path"]),
        "splits": words(entry.get("split", "filtered")),
        "revisions": words(revision if isinstance(revision, list) else revision or ""),
        "chat_template": entry.get("chat_template", "model"),
        "credit_rule": entry.get("credit_rule", "first_chosen"),
        "ties_formula": entry.get("ties_formula", "2025-06"),
    }


# ---- methods of several stages (workflow/rules/stages.smk) -----------------------------------------------------
def _local(value):
    # a path this run writes or that exists is a file input; anything else (a hub id) is only an argument
    return value.startswith(f"{RESULTS}/") or Path(value).exists()


def stage_files(stage):
    def files(wildcards):
        return [v for v in PLAN.stage_inputs(wildcards.method, wildcards.base, stage).values() if _local(v)]

    return files


def stage_arguments(stage):
    def arguments(wildcards):
        return json.dumps(PLAN.stage_inputs(wildcards.method, wildcards.base, stage), sort_keys=True)

    return arguments


def stage_output(stage):
    return PLAN.stage_dir("{method}", "{base}", stage)


# ---- best-of-N (workflow/rules/bestofn.smk) ---------------------------------------------------------------------
def bestofn_model(wildcards):
    return PLAN.model_dir(wildcards.method, wildcards.base)


def bestofn_data(wildcards):
    return PLAN.prepared(wildcards.set)


def bestofn_steps(wildcards):
    steps = config["bestofn"].get("steps")
    return PLAN.prepared(steps) if steps else ""


def bestofn_step_text(wildcards):
    # how this candidate set writes its steps (datasets.<set>.steps); "" when it declares none
    import json

    declared = config["datasets"][wildcards.set].get("steps")
    return json.dumps(declared, ensure_ascii=False) if declared else ""


def bestofn_steps_input(wildcards):
    return [path for path in [bestofn_steps(wildcards)] if path]


def rank_model(wildcards):
    return PLAN.model_dir(wildcards.method, wildcards.base)


def rank_data(wildcards):
    return config["rank"]["data"]


# ---- SLURM: check every rule's request against the cluster before the first sbatch (rmflow/slurm/resources.py) -----------
_CHECKED_RESOURCES = ("slurm_partition", "gres", "gpus", "gpu", "cpus_per_task", "mem_mb", "processes")


def _env_file(rule):
    # a rule's `conda:` path is relative to the Snakefile that defines it (Snakemake's own rule)
    base = getattr(rule.basedir, "get_path_or_uri", lambda: rule.basedir or workflow.basedir)()
    return str(Path(base) / rule.conda_env)


def _literal_resources(rule):
    # string resources stay unevaluated until a job exists; what the profile wrote is in .raw
    raw = {k: getattr(v, "raw", v) for k, v in rule.resources.items() if k in _CHECKED_RESOURCES}
    return {k: v.strip("'\"") if isinstance(v, str) else v for k, v in raw.items() if isinstance(v, (str, int))}


# Rules of a method's own rule file whose jobs train, and the method they train (ssrm.smk adds ssrm_train); the
# generic train_<preset> jobs carry theirs in the method wildcard.
OWN_TRAINING_RULES = {}


def training_method(job):
    """The method a job trains, or None for a job that trains nothing (the cluster checks before submission)."""
    if job.rule.name in OWN_TRAINING_RULES:
        return OWN_TRAINING_RULES[job.rule.name]
    return job.wildcards.get("method") if job.rule.name.startswith("train_") else None


onstart:
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.cli_prefix == "slurm" and not workflow.dryrun:
        from rmflow.slurm.resources import check_against_cluster
        from rmflow.slurm.resources import deepspeed_problems

        jobs = [job for job in workflow.dag.needrun_jobs() if not workflow.is_local(job.rule)]
        planned = {job.rule for job in jobs}
        trainings = []
        for job in jobs:
            method = training_method(job)
            if method:
                train = PLAN.train_config(method, job.wildcards.base)
                trainings.append(
                    (
                        job.rule.name,
                        f"{method}/{job.wildcards.base}",
                        _literal_resources(job.rule),
                        train.deepspeed,
                        train.deepspeed_fallback,
                    )
                )
        from snakemake.settings.types import DeploymentMethod

        # under --sdm conda the jobs run in each rule's env: judge its env file, not this interpreter
        conda = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
        env_files = (
            {job.rule.name: _env_file(job.rule) for job in jobs if isinstance(job.rule.conda_env, str)}
            if conda
            else None
        )
        from rmflow import hub_check
        from rmflow.slurm.resources import cluster_partitions
        from rmflow.sizing.main import refusals

        partitions = cluster_partitions()
        # each job's estimated GPU memory, time and disk against its request and the cluster (rmflow plan)
        scheduled = [(job.rule.name, dict(job.wildcards.items()), dict(job.resources.items())) for job in jobs]
        # every hub reference loadable where the jobs run (licence, revision, split; offline: cached), said now
        check_against_cluster(
            {rule.name: _literal_resources(rule) for rule in planned},
            where="the profile's set-resources/default-resources (or --set-resources)",
            partitions=partitions,
            more_problems=deepspeed_problems(trainings, env_files)
            + hub_check.check(config)
            + refusals(PLAN, scheduled, partitions, workflow.execution_settings.retries + 1),
        )
