# Best-of-N (methods.md section 7) for every scalar method, one table + plot; and `rmflow rank` for online RLHF.


rule bestofn:
    input:
        model=bestofn_model,
        data=bestofn_data,
        steps=bestofn_steps_input,
    output:
        paths.pattern("bestofn"),
    log:
        f"{RESULTS}/logs/bestofn/{{set}}/{{method}}/{{base}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/bestofn/{{set}}/{{method}}/{{base}}.tsv"
    wildcard_constraints:
        method=Plan.regex(PLAN.scalar_methods()),
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        cfg=config["bestofn"],
        steps=bestofn_steps,
        step_text=bestofn_step_text,
        batch_size=config["evaluate"]["batch_size"],
        # scores kept chunk by chunk outside the job's declared outputs, so a preempted or timed-out job resumes
        resume=lambda w: f"{RESULTS}/scratch/bestofn/{w.set}/{w.method}/{w.base}.partial.jsonl",
    shell:
        "python -m rmflow --rule bestofn --gpus {params.gpus}"
        " bestofn run --method {wildcards.method:q} --base {wildcards.base:q} --model-dir {input.model:q}"
        " --data {input.data:q} --set {wildcards.set:q} --steps-data={params.steps:q} --step-text={params.step_text:q}"
        " --ns {params.cfg[ns]}"
        " --subsets {params.cfg[subsets]} --seed {params.cfg[seed]} --batch-size {params.batch_size} --out {output:q}"
        " --resume-file {params.resume:q}"
        " --threads {threads} > {log:q} 2>&1"


rule bestofn_table:
    input:
        PLAN.bestofn_files(),
    output:
        csv=f"{RESULTS}/bestofn.csv",
        png=report(
            f"{RESULTS}/bestofn.png",
            caption="../report/bestofn.rst",
            category="2. Figures",
            labels={"figure": "best-of-N"},
        ),
        svg=f"{RESULTS}/plots/bestofn.svg",
    log:
        f"{RESULTS}/logs/bestofn_table.log",
    benchmark:
        f"{RESULTS}/benchmarks/bestofn_table.tsv"
    localrule: True
    conda:
        "../../envs/table.yaml"
    shell:
        "python -m rmflow bestofn table --files {input:q} --csv {output.csv:q} --png {output.png:q} --svg {output.svg:q}"
        " > {log:q} 2>&1"


rule rank:
    input:
        model=rank_model,
        data=rank_data,
    output:
        stats=paths.pattern("rank_stats"),
    log:
        f"{RESULTS}/logs/rank/{{method}}/{{base}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/rank/{{method}}/{{base}}.tsv"
    conda:
        "../../envs/eval.yaml"
    threads: config["threads"]["evaluate"]
    params:
        gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
        cfg=config["rank"],
        batch_size=config["evaluate"]["batch_size"],
    shell:
        "python -m rmflow --rule rank --gpus {params.gpus}"
        " rank --method {wildcards.method:q} --model-dir {input.model:q} --data {input.data:q}"
        " --mode {params.cfg[mode]} --top-k {params.cfg[top_k]} --batch-size {params.batch_size}"
        " --out-dir $(dirname {output.stats:q}) --threads {threads} > {log:q} 2>&1"
