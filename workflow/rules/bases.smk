# Base models: tiny ones are built from config, GGUF ones converted into a standard Hugging Face directory (once per
# GGUF file and chat template, whichever base names use it), under results/bases/ (hub or local bases need no rule;
# training loads them directly).


rule base_spec:
    output:
        paths.pattern("base_spec"),
    log:
        f"{RESULTS}/logs/base_spec/{{built}}.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        data=built_spec_data,
    shell:
        "python -m rmflow write-json --out {output:q} --data={params.data:q} > {log:q} 2>&1"


rule build_base:
    input:
        spec=paths.pattern("base_spec"),
        corpus=tokenizer_corpus,
    output:
        directory(paths.pattern("base")),
    log:
        f"{RESULTS}/logs/build_base/{{built}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_base/{{built}}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: config["threads"]["build_base"]
    params:
        corpus=tokenizer_corpus,
    shell:
        "python -m rmflow build-base --spec {input.spec:q} --corpus={params.corpus:q} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"
