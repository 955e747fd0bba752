# Config validation, the run plan, wildcard constraints and the input functions the rules share.
import sys
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
if PLAN.skipped_evaluations():  # said, never silently dropped
    print("rmflow: not evaluated (RewardBench 2 scores each completion alone; pairwise methods cannot): "
          + ", ".join(f"{m} on {e}" for e, m in PLAN.skipped_evaluations()), file=sys.stderr)


wildcard_constraints:
    method=Plan.regex(PLAN.methods),
    base=Plan.regex(PLAN.bases),
    eval_set=Plan.regex(PLAN.eval_sets),
    dataset=Plan.regex(PLAN.datasets()),
    k=r"\d+",
    shard=r"\d+",


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


def base_inputs(wildcards):
    return [f"{RESULTS}/bases/{wildcards.base}"] if PLAN.is_tiny(wildcards.base) else []


def prepared_data(wildcards):
    return f"{RESULTS}/data/prepared/{PLAN.dataset_of(wildcards.method)}.parquet"


def train_inputs(wildcards):
    return {
        "spec": f"{RESULTS}/specs/runs/{wildcards.method}/{wildcards.base}.json",
        "data": PLAN.train_data(wildcards.method, wildcards.base),
        "base": base_inputs(wildcards),
        "extra": PLAN.extra_train_inputs(wildcards.method, wildcards.base),
    }


def eval_inputs(wildcards):
    return {
        "model": PLAN.model_dir(wildcards.method, wildcards.base),
        "data": PLAN.local_inputs("eval_sets", wildcards.eval_set),
    }


def eval_params(wildcards):
    return _shell_safe(config["eval_sets"][wildcards.eval_set])


# ---- SSRM rounds (workflow/rules/ssrm.smk) ----------------------------------------------------------------------
def _ssrm():
    return PLAN.method_options("ssrm")


def ssrm_labeled_source(wildcards):
    return f"{RESULTS}/data/prepared/{PLAN.dataset_of('ssrm')}.parquet"


def ssrm_pool_source(wildcards):
    pool = _ssrm().unlabeled_dataset
    return f"{RESULTS}/data/prepared/{pool}.parquet" if pool else ""


def ssrm_pool_input(wildcards):
    return [path for path in [ssrm_pool_source(wildcards)] if path]


def ssrm_shards(wildcards):
    return _ssrm().shards


def ssrm_init(wildcards):
    """Round 0 starts from the base model (a hub id is no input file); round k from model k - 1."""
    k, base = int(wildcards.k), wildcards.base
    return PLAN.base_model_ref(base) if k == 0 else f"{RESULTS}/ssrm/{base}/iter{k - 1}/model"


def ssrm_train_inputs(wildcards):
    k, base = int(wildcards.k), wildcards.base
    if k == 0:
        start, data = base_inputs(wildcards), f"{RESULTS}/ssrm/{base}/labeled.parquet"
    else:
        start, data = [ssrm_init(wildcards)], f"{RESULTS}/ssrm/{base}/iter{k - 1}/train.parquet"
    return {"spec": f"{RESULTS}/specs/runs/ssrm/{base}.json", "data": data, "start": start}


def ssrm_label_shards(wildcards):
    return [
        f"{RESULTS}/ssrm/{wildcards.base}/iter{wildcards.k}/labels/shard{s}.parquet"
        for s in range(_ssrm().shards)
    ]


def ssrm_report_inputs(wildcards):
    rounds = range(_ssrm().iterations + 1)
    base = f"{RESULTS}/ssrm/{wildcards.base}"
    return {
        "stats": [f"{base}/iter{k}/select.json" for k in rounds[:-1]],
        "models": [f"{base}/iter{k}/model" for k in rounds],
        "eval": PLAN.local_inputs("eval_sets", PLAN.eval_sets[0]),
    }


def ssrm_report_eval_set(wildcards):
    return _shell_safe(config["eval_sets"][PLAN.eval_sets[0]])


# ---- ArmoRM and the decision tree (workflow/rules/armo.smk) -----------------------------------------------------
def armo_backbone(wildcards):
    options = PLAN.method_options("armo")
    return options.backbone or PLAN.model_dir(options.backbone_method, wildcards.base)


def armo_backbone_input(wildcards):
    path = armo_backbone(wildcards)
    return [path] if PLAN.method_options("armo").backbone is None or Path(path).exists() else []


def armo_attributes(wildcards):
    return PLAN.method_options("armo").attributes


def armo_attributes_input(wildcards):
    return [armo_attributes(wildcards)]


def armo_preferences(wildcards):
    return f"{RESULTS}/data/prepared/{PLAN.dataset_of('armo')}.parquet"


def tree_preferences(wildcards):
    return f"{RESULTS}/data/prepared/{PLAN.dataset_of('tree')}.parquet"


# ---- best-of-N (workflow/rules/bestofn.smk) ---------------------------------------------------------------------
def bestofn_model(wildcards):
    return PLAN.model_dir(wildcards.method, wildcards.base)


def bestofn_data(wildcards):
    return config["bestofn"]["data"]


def bestofn_steps(wildcards):
    return config["bestofn"]["steps_data"] or ""


def rank_model(wildcards):
    return PLAN.model_dir(wildcards.method, wildcards.base)


def rank_data(wildcards):
    return config["rank"]["data"]


# ---- SLURM: check every rule's request against the cluster before the first sbatch (rmflow/cluster.py) -----------
_CHECKED_RESOURCES = ("slurm_partition", "gres", "gpus", "gpu", "cpus_per_task", "mem_mb", "processes")


def _literal_resources(rule):
    # string resources stay unevaluated until a job exists; what the profile wrote is in .raw
    raw = {k: getattr(v, "raw", v) for k, v in rule.resources.items() if k in _CHECKED_RESOURCES}
    return {k: v.strip("'\"") if isinstance(v, str) else v for k, v in raw.items() if isinstance(v, (str, int))}


onstart:
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.cli_prefix == "slurm" and not workflow.dryrun:
        from rmflow.cluster import check_against_cluster

        planned = {job.rule for job in workflow.dag.needrun_jobs() if not workflow.is_local(job.rule)}
        check_against_cluster(
            {rule.name: _literal_resources(rule) for rule in planned},
            where="the profile's set-resources/default-resources (or --set-resources)",
        )
