# The SSRM rounds' input functions (workflow/rules/ssrm.smk includes this file; Snakemake's linter wants functions
# apart from rules). With ssrm.smk, the one method-owned part of the workflow: nothing else outside methods/ names
# a method.
OWN_TRAINING_RULES["ssrm_train"] = "ssrm"


def _ssrm(wildcards):
    return PLAN.method_options("ssrm", wildcards.base)


def ssrm_labeled_source(wildcards):
    return PLAN.prepared(PLAN.dataset_of("ssrm", wildcards.base))


def ssrm_pool_source(wildcards):
    pool = _ssrm(wildcards).unlabeled_dataset
    return PLAN.prepared(pool) if pool else ""


def ssrm_pool_input(wildcards):
    return [path for path in [ssrm_pool_source(wildcards)] if path]


def ssrm_shards(wildcards):
    return _ssrm(wildcards).shards


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
    return {"spec": paths.path("run_spec", method="ssrm", base=base), "data": data, "start": start}


def ssrm_label_shards(wildcards):
    return [
        f"{RESULTS}/ssrm/{wildcards.base}/iter{wildcards.k}/labels/shard{s}.parquet"
        for s in range(_ssrm(wildcards).shards)
    ]


def ssrm_report_inputs(wildcards):
    rounds = range(_ssrm(wildcards).iterations + 1)
    base = f"{RESULTS}/ssrm/{wildcards.base}"
    return {
        "stats": [f"{base}/iter{k}/select.json" for k in rounds[:-1]],
        "models": [f"{base}/iter{k}/model" for k in rounds],
        "eval": PLAN.local_inputs("eval_sets", PLAN.eval_sets[0]),
    }


def ssrm_report_eval_set(wildcards):
    return _shell_safe(config["eval_sets"][PLAN.eval_sets[0]])
