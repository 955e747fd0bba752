# Training: one job per (method, base). The rule is the same for every method (the registry dispatches);
# one copy per GPU preset so a SLURM profile can give each preset its own resources (set-resources: train_<preset>).


rule run_spec:
    output:
        paths.pattern("run_spec"),
    log:
        f"{RESULTS}/logs/run_spec/{{method}}/{{base}}.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        data=run_spec_data,
    shell:
        "python -m rmflow write-json --out {output:q} --data={params.data:q} > {log:q} 2>&1"


rule transform_data:
    input:
        spec=paths.pattern("run_spec"),
        data=prepared_data,
    output:
        data=paths.pattern("transformed"),
        report=paths.pattern("transformed_report"),
    log:
        f"{RESULTS}/logs/transform_data/{{method}}/{{base}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/transform_data/{{method}}/{{base}}.tsv"
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m rmflow transform --spec {input.spec:q} --data {input.data:q} --out {output.data:q}"
        " --report {output.report:q} > {log:q} 2>&1"


rule setup_untrained:
    input:
        unpack(train_inputs),
    output:
        directory(paths.pattern("model")),
    log:
        f"{RESULTS}/logs/setup/{{method}}/{{base}}.log",
    wildcard_constraints:
        method=Plan.regex(PLAN.setup_methods()),
    localrule: True
    conda:
        "../../envs/train.yaml"
    shell:
        "python -m rmflow train --spec {input.spec:q} --out {output:q} > {log:q} 2>&1"


for preset in GPU_PRESETS:

    rule:
        name:
            f"train_{preset}"
        input:
            unpack(train_inputs),
        output:
            directory(paths.pattern("model")),
        log:
            f"{RESULTS}/logs/train/{{method}}/{{base}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train/{{method}}/{{base}}.tsv"
        wildcard_constraints:
            method=Plan.regex(PLAN.generic_methods()),
            base=Plan.regex(PLAN.bases_with_preset(preset)),
        conda:
            "../../envs/train.yaml"
        threads: config["threads"]["train"]
        resources:
            processes=1,  # one per GPU; the SLURM profile sets it per preset (set-resources)
            nodes=1,
        params:
            gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
            rule_name=f"train_{preset}",
            checkpoints=lambda w: f"{RESULTS}/scratch/checkpoints/{w.method}/{w.base}",
        shell:
            "python -m rmflow --rule {params.rule_name:q} --gpus {params.gpus} train --spec {input.spec:q} --out {output:q}"
            " --threads {threads} --checkpoint-dir {params.checkpoints:q} --processes {resources.processes}"
            " --machines {resources.nodes}"
            " > {log:q} 2>&1"
