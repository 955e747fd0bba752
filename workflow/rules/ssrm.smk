# SSRM self-training rounds (methods.md section 3): split -> seed model -> [pseudo-label shards -> select -> train]
# x iterations. Every step is its own job, so a crashed round reruns alone.


include: "ssrm_inputs.smk"


rule ssrm_split:
    input:
        spec=paths.path("run_spec", method="ssrm", base="{base}"),
        data=ssrm_labeled_source,
        pool=ssrm_pool_input,
    output:
        labeled=f"{RESULTS}/ssrm/{{base}}/labeled.parquet",
        pool=f"{RESULTS}/ssrm/{{base}}/pool.parquet",
        report=f"{RESULTS}/ssrm/{{base}}/split.json",
    log:
        f"{RESULTS}/logs/ssrm/{{base}}/split.log",
    conda:
        "../../envs/data.yaml"
    params:
        pool=ssrm_pool_source,
    shell:
        "python -m rmflow ssrm split --spec {input.spec:q} --data {input.data:q} --pool={params.pool:q}"
        " --out-labeled {output.labeled:q} --out-pool {output.pool:q} --report {output.report:q} > {log:q} 2>&1"


rule ssrm_train:
    input:
        unpack(ssrm_train_inputs),
    output:
        directory(f"{RESULTS}/ssrm/{{base}}/iter{{k}}/model"),
    log:
        f"{RESULTS}/logs/ssrm/{{base}}/train_iter{{k}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ssrm/{{base}}/train_iter{{k}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]["train"]
    resources:
        processes=1,
        nodes=1,
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        init=ssrm_init,
        checkpoints=lambda w: f"{RESULTS}/scratch/checkpoints/ssrm/{w.base}/iter{w.k}",
    shell:
        "python -m rmflow --rule ssrm_train --gpus {params.gpus}"
        " train --spec {input.spec:q} --data {input.data:q} --init {params.init:q} --out {output:q}"
        " --threads {threads} --checkpoint-dir {params.checkpoints:q} --processes {resources.processes}"
        " --machines {resources.nodes} > {log:q} 2>&1"


rule ssrm_label:
    input:
        model=f"{RESULTS}/ssrm/{{base}}/iter{{k}}/model",
        pool=f"{RESULTS}/ssrm/{{base}}/pool.parquet",
    output:
        f"{RESULTS}/ssrm/{{base}}/iter{{k}}/labels/shard{{shard}}.parquet",
    log:
        f"{RESULTS}/logs/ssrm/{{base}}/label_iter{{k}}_shard{{shard}}.log",
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        shards=ssrm_shards,
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "python -m rmflow --rule ssrm_label --gpus {params.gpus}"
        " ssrm label --model-dir {input.model:q} --pool {input.pool:q} --shard {wildcards.shard:q}"
        " --shards {params.shards} --batch-size {params.batch_size} --out {output:q} --threads {threads} > {log:q} 2>&1"


rule ssrm_select:
    input:
        spec=paths.path("run_spec", method="ssrm", base="{base}"),
        shards=ssrm_label_shards,
        labeled=f"{RESULTS}/ssrm/{{base}}/labeled.parquet",
    output:
        train=f"{RESULTS}/ssrm/{{base}}/iter{{k}}/train.parquet",
        stats=f"{RESULTS}/ssrm/{{base}}/iter{{k}}/select.json",
    log:
        f"{RESULTS}/logs/ssrm/{{base}}/select_iter{{k}}.log",
    conda:
        "../../envs/data.yaml"
    shell:
        "python -m rmflow ssrm select --spec {input.spec:q} --shard-files {input.shards:q} --labeled {input.labeled:q}"
        " --iteration {wildcards.k:q} --out-train {output.train:q} --stats {output.stats:q} > {log:q} 2>&1"


rule ssrm_report:
    input:
        unpack(ssrm_report_inputs),
    output:
        f"{RESULTS}/ssrm/{{base}}/report.json",
    log:
        f"{RESULTS}/logs/ssrm/{{base}}/report.log",
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        data=ssrm_report_eval_set,
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "python -m rmflow --rule ssrm_report --gpus {params.gpus}"
        " ssrm report --stats-files {input.stats:q} --model-dirs {input.models:q} --data {params.data[path]:q}"
        " --split {params.data[split]:q} --batch-size {params.batch_size} --out {output:q} --threads {threads}"
        " > {log:q} 2>&1"
