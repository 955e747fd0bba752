# Evaluation: score each trained model on each eval set with its benchmark's official rules (docs/evaluation.md).


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        scores=paths.pattern("scores"),
        examples=paths.pattern("examples"),
    log:
        f"{RESULTS}/logs/evaluate/{{eval_set}}/{{method}}/{{base}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{eval_set}}/{{method}}/{{base}}.tsv"
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        data=eval_params,
        tie_rule=config["evaluate"]["tie_rule"],
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "python -m rmflow --rule evaluate --gpus {params.gpus}"
        " evaluate --model-dir {input.model:q} --method {wildcards.method:q} --data {params.data[sources]}"
        " --split {params.data[splits]} --revision {params.data[revisions]} --benchmark {params.data[benchmark]}"
        " --sections={params.data[sections]:q} --prepared {input.rows:q}"
        " --chat-template {params.data[chat_template]} --credit-rule {params.data[credit_rule]}"
        " --ties-formula {params.data[ties_formula]}"
        " --tie-rule {params.tie_rule} --batch-size {params.batch_size} --eval-set {wildcards.eval_set:q}"
        " --base {wildcards.base:q} --out-dir $(dirname {output.scores:q}) --threads {threads} > {log:q} 2>&1"
