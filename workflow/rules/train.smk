# Training: one job per (method, base). The rule is the same for every method (the registry dispatches);
# one copy per GPU preset so a SLURM profile can give each preset its own resources (set-resources: train_<preset>).


rule run_spec:
    output:
        f"{RESULTS}/specs/runs/{{method}}/{{base}}.json",
    params:
        spec=run_spec,
    log:
        f"{RESULTS}/logs/run_spec/{{method}}/{{base}}.log",
    localrule: True
    run:
        write_json(output[0], params.spec)


for preset in GPU_PRESETS:

    rule:
        name:
            f"train_{preset}"
        input:
            unpack(train_inputs),
        output:
            directory(f"{RESULTS}/models/{{method}}/{{base}}"),
        wildcard_constraints:
            base=Plan.regex(PLAN.bases_with_preset(preset)),
        threads: config["threads"]["train"]
        log:
            f"{RESULTS}/logs/train/{{method}}/{{base}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/train/{{method}}/{{base}}.tsv"
        conda:
            "../../envs/train.yaml"
        shell:
            "rmflow train --spec {input.spec} --out {output} --threads {threads} > {log} 2>&1"
