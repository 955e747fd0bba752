# Data: the synthetic suite (embedded default), local samples of the paper's hub sets (paper-smoke) and any
# configured dataset -> validated canonical rows (parquet) of
# its format's kind: preference pairs, step-labelled chats, attribute ratings or best-of-N candidate sets.


rule synthetic_data:
    output:
        train=f"{RESULTS}/data/synthetic/train.jsonl",
        test=f"{RESULTS}/data/synthetic/test.jsonl",
        attributes=f"{RESULTS}/data/synthetic/attributes.jsonl",
        steps=f"{RESULTS}/data/synthetic/steps.jsonl",
        bestofn=f"{RESULTS}/data/synthetic/bestofn.jsonl",
        rewardbench2=f"{RESULTS}/data/synthetic/rewardbench2.jsonl",
        manifest=f"{RESULTS}/data/synthetic/manifest.json",
    log:
        f"{RESULTS}/logs/synthetic_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthetic_data.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        seed=config["seed"],
        n_train=config["synthetic"]["n_train_per_subset"],
        n_test=config["synthetic"]["n_test_per_subset"],
    shell:
        "python -m rmflow make-synthetic --seed {params.seed} --n-train {params.n_train} --n-test {params.n_test}"
        " --out-dir $(dirname {output.train:q}) > {log:q} 2>&1"


rule samples:
    output:
        files=[f"{RESULTS}/data/samples/{name}" for name in SAMPLE_FILES],
        rewardbench=directory(f"{RESULTS}/data/samples/rewardbench"),
        manifest=f"{RESULTS}/data/samples/manifest.json",
    log:
        f"{RESULTS}/logs/samples.log",
    benchmark:
        f"{RESULTS}/benchmarks/samples.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        shared=config["samples"].get("shared", ""),
        sizes=sample_sizes,
    shell:
        "python -m rmflow make-samples --shared {params.shared:q} --sizes {params.sizes:q}"
        " --out-dir $(dirname {output.manifest:q}) > {log:q} 2>&1"


rule prepare_eval:
    input:
        unpack(eval_set_inputs),
    output:
        rows=paths.pattern("eval_rows"),
        report=paths.pattern("eval_report"),
    log:
        f"{RESULTS}/logs/prepare_eval/{{eval_set}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_eval/{{eval_set}}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=eval_params,
    shell:
        "python -m rmflow prepare-eval --name {wildcards.eval_set:q} --data {params.data[sources]}"
        " --benchmark {params.data[benchmark]} --split {params.data[splits]} --revision {params.data[revisions]}"
        " --out {output.rows:q} --report {output.report:q} > {log:q} 2>&1"


# Every eval set is validated before anything that leads to a GPU job starts: every training, probe and best-of-N
# job reads a prepared data set, and prepare_data waits for this flag. ancient(): a changed eval set re-validates
# itself but never makes the training data (and so every model) look out of date.
rule eval_sets_checked:
    input:
        [paths.path("eval_report", eval_set=name) for name in PLAN.eval_sets],
    output:
        paths.pattern("eval_checked"),
    log:
        f"{RESULTS}/logs/eval_sets_checked.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        data=command_json({"eval_sets": sorted(PLAN.eval_sets)}, "eval sets"),
    shell:
        "python -m rmflow write-json --out {output:q} --data={params.data:q} > {log:q} 2>&1"


rule prepare_data:
    input:
        unpack(dataset_inputs),
        eval_checked=ancient(paths.pattern("eval_checked")),
    output:
        rows=paths.pattern("prepared"),
        report=paths.pattern("prepared_report"),
    log:
        f"{RESULTS}/logs/prepare_data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data/{{dataset}}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        data=dataset_params,
    shell:
        "python -m rmflow prepare-data --name {wildcards.dataset:q} --source {params.data[sources]} --format {params.data[format]}"
        " --split {params.data[split]:q} --revision={params.data[revision]:q} --data-dir={params.data[data_dir]:q}"
        " --where={params.data[where]:q} --on-invalid {params.data[on_invalid]} --out {output.rows:q}"
        " --report {output.report:q} > {log:q} 2>&1"
