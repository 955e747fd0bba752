# ArmoRM (methods.md section 5) and the decision-tree RM (section 8): stage-1 probes on a frozen backbone RM,
# then the gate (ArmoRM) or the tree, each its own job.


rule armo_stage1:
    input:
        spec=f"{RESULTS}/specs/runs/armo/{{base}}.json",
        backbone=armo_backbone_input,
        attributes=armo_attributes_input,
    output:
        regression=f"{RESULTS}/armo/{{base}}/stage1/regression.safetensors",
        report=f"{RESULTS}/armo/{{base}}/stage1/stage1.json",
    params:
        backbone=armo_backbone,
        attributes=armo_attributes,
    threads: config["threads"]["evaluate"]
    log:
        f"{RESULTS}/logs/armo/{{base}}/stage1.log",
    benchmark:
        f"{RESULTS}/benchmarks/armo/{{base}}/stage1.tsv"
    conda:
        "../../envs/eval.yaml"
    shell:
        "rmflow armo stage1 --spec {input.spec} --backbone {params.backbone:q} --attributes {params.attributes:q}"
        " --out $(dirname {output.report}) --threads {threads} > {log} 2>&1"


rule armo_stage2:
    input:
        spec=f"{RESULTS}/specs/runs/armo/{{base}}.json",
        backbone=armo_backbone_input,
        stage1=f"{RESULTS}/armo/{{base}}/stage1/stage1.json",
        data=armo_preferences,
    output:
        directory(f"{RESULTS}/armo/{{base}}/model"),
    params:
        backbone=armo_backbone,
    threads: config["threads"]["train"]
    log:
        f"{RESULTS}/logs/armo/{{base}}/stage2.log",
    benchmark:
        f"{RESULTS}/benchmarks/armo/{{base}}/stage2.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "rmflow armo stage2 --spec {input.spec} --backbone {params.backbone:q} --stage1 $(dirname {input.stage1})"
        " --data {input.data} --out {output} --threads {threads} > {log} 2>&1"


rule tree_fit:
    input:
        spec=f"{RESULTS}/specs/runs/tree/{{base}}.json",
        backbone=armo_backbone_input,
        stage1=f"{RESULTS}/armo/{{base}}/stage1/stage1.json",
        data=tree_preferences,
    output:
        directory(f"{RESULTS}/tree/{{base}}/model"),
    params:
        backbone=armo_backbone,
    threads: config["threads"]["train"]
    log:
        f"{RESULTS}/logs/tree/{{base}}/fit.log",
    benchmark:
        f"{RESULTS}/benchmarks/tree/{{base}}/fit.tsv"
    conda:
        "../../envs/train.yaml"
    shell:
        "rmflow tree fit --spec {input.spec} --backbone {params.backbone:q} --stage1 $(dirname {input.stage1})"
        " --data {input.data} --out {output} --threads {threads} > {log} 2>&1"
