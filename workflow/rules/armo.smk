# Frozen-backbone methods: stage-1 probes per attribute on a frozen backbone RM (ArmoRM, methods.md section 5; the
# decision tree, section 8, when it has its own attribute data), then ArmoRM's gate or the tree, each its own job.


rule probe_fit:
    input:
        spec=f"{RESULTS}/specs/runs/{{method}}/{{base}}.json",
        backbone=probe_backbone_input,
        attributes=probe_attributes,
    output:
        regression=f"{RESULTS}/{{method}}/{{base}}/stage1/regression.safetensors",
        report=f"{RESULTS}/{{method}}/{{base}}/stage1/stage1.json",
    log:
        f"{RESULTS}/logs/{{method}}/{{base}}/stage1.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{method}}/{{base}}/stage1.tsv"
    wildcard_constraints:
        method=Plan.regex(PLAN.probe_methods()),
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        backbone=probe_backbone,
    shell:
        "python -m rmflow --rule probe_fit --gpus {params.gpus}"
        " armo stage1 --spec {input.spec} --backbone {params.backbone:q} --attributes {input.attributes}"
        " --out $(dirname {output.report}) --threads {threads} > {log} 2>&1"


rule armo_stage2:
    input:
        spec=f"{RESULTS}/specs/runs/{{method}}/{{base}}.json",
        backbone=stage1_backbone_input,
        stage1=stage1_of,
        data=prepared_data,
    output:
        directory(f"{RESULTS}/{{method}}/{{base}}/model"),
    log:
        f"{RESULTS}/logs/{{method}}/{{base}}/stage2.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{method}}/{{base}}/stage2.tsv"
    wildcard_constraints:
        method="armo",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]["train"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        backbone=stage1_backbone,
    shell:
        "python -m rmflow --rule armo_stage2 --gpus {params.gpus}"
        " armo stage2 --spec {input.spec} --backbone {params.backbone:q} --stage1 $(dirname {input.stage1})"
        " --data {input.data} --out {output} --threads {threads} > {log} 2>&1"


rule tree_fit:
    input:
        spec=f"{RESULTS}/specs/runs/{{method}}/{{base}}.json",
        backbone=stage1_backbone_input,
        stage1=stage1_of,
        data=prepared_data,
    output:
        directory(f"{RESULTS}/{{method}}/{{base}}/model"),
    log:
        f"{RESULTS}/logs/{{method}}/{{base}}/fit.log",
    benchmark:
        f"{RESULTS}/benchmarks/{{method}}/{{base}}/fit.tsv"
    wildcard_constraints:
        method="tree",
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]["train"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        backbone=stage1_backbone,
    shell:
        "python -m rmflow --rule tree_fit --gpus {params.gpus}"
        " tree fit --spec {input.spec} --backbone {params.backbone:q} --stage1 $(dirname {input.stage1})"
        " --data {input.data} --out {output} --threads {threads} > {log} 2>&1"
