# Evaluation: score each trained model on each eval set with RewardBench's rules.


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
        " evaluate --model-dir {input.model:q} --method {wildcards.method:q} --data {params.data[path]:q}"
        " --split {params.data[split]:q} --revision={params.data[revision]:q} --benchmark {params.data[benchmark]}"
        " --sections={params.data[sections]:q} --prepared {input.rows:q}"
        " --tie-rule {params.tie_rule} --batch-size {params.batch_size} --eval-set {wildcards.eval_set:q}"
        " --base {wildcards.base:q} --out-dir $(dirname {output.scores:q}) --threads {threads} > {log:q} 2>&1"
