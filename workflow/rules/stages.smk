# Methods of several stages (a method's STAGES: ArmoRM probe -> gate, the tree [probe ->] fit): one rule per stage
# name, the same for every method that has it. A stage reads what its method's stage_inputs hook names (files
# become inputs, hub ids only arguments); the last stage writes the model, the others results/stages/.


for stage in PLAN.stage_names():

    rule:
        name:
            f"stage_{stage}"
        input:
            spec=paths.pattern("run_spec"),
            files=stage_files(stage),
            base=base_inputs,  # a base the workflow builds (tiny, GGUF) exists before any stage reads spec.base_model
        output:
            directory(stage_output(stage)),
        log:
            f"{RESULTS}/logs/stage_{stage}/{{method}}/{{base}}.log",
        benchmark:
            f"{RESULTS}/benchmarks/stage_{stage}/{{method}}/{{base}}.tsv"
        wildcard_constraints:
            method=Plan.regex(PLAN.methods_with_stage(stage)),
        conda:
            "../../envs/train.yaml"
        threads: config["threads"]["train"]
        params:
            gpus=gpus_asked,  # the GPUs this job asked for: the command refuses to run without them
            inputs=stage_arguments(stage),
            stage=stage,
            # a large set's embeddings, kept chunk by chunk outside the declared output: a timed-out job resumes
            resume=lambda w: f"{RESULTS}/scratch/stages/{w.method}/{w.base}",
        shell:
            "python -m rmflow --rule stage_{params.stage} --gpus {params.gpus} stage --method {wildcards.method:q}"
            " --stage {params.stage} --spec {input.spec:q} --inputs {params.inputs:q} --out {output:q}"
            " --checkpoint-dir {params.resume:q}/{params.stage} --threads {threads} > {log:q} 2>&1"
