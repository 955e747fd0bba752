# Gather: every scores.json (+ examples.parquet) of this run -> the leaderboard with bootstrap intervals, its
# Markdown/LaTeX renderings, per-subset accuracies, paired tests against the best, the figures and the report items.
# When jobs fail (keep-going), the onerror handler below gathers the same tables from the scores that exist and
# lists the planned rows without one in leaderboard_missing.csv (rmflow.plan.failures); a rerun fills the gaps.
from rmflow.plan.failures import gather_what_exists


onerror:
    gather_what_exists(workflow.dag, PLAN, PUBLISHED_TABLE)


rule leaderboard:
    input:
        scores=PLAN.score_files(),
        published=PUBLISHED_TABLE,
    output:
        csv=report(
            f"{RESULTS}/leaderboard.csv",
            caption="../report/leaderboard.rst",
            category="1. Leaderboard",
            labels={"table": "leaderboard"},
        ),
        md=f"{RESULTS}/leaderboard.md",
        tex=report(
            f"{RESULTS}/leaderboard.tex",
            caption="../report/latex.rst",
            category="1. Leaderboard",
            labels={"table": "LaTeX"},
        ),
        summary=report(
            f"{RESULTS}/leaderboard_summary.csv",
            caption="../report/summary.rst",
            category="1. Leaderboard",
            labels={"table": "summary"},
        ),
        subsets=report(
            f"{RESULTS}/leaderboard_subsets.csv",
            caption="../report/subsets.rst",
            category="1. Leaderboard",
            labels={"table": "per subset"},
        ),
        significance=report(
            f"{RESULTS}/pairwise_significance.csv",
            caption="../report/significance.rst",
            category="1. Leaderboard",
            labels={"table": "significance"},
        ),
        sources=f"{RESULTS}/leaderboard_sources.csv",
        published_csv=f"{RESULTS}/leaderboard_published.csv",
        published_md=f"{RESULTS}/leaderboard_published.md",
        missing=f"{RESULTS}/leaderboard_missing.csv",
    log:
        f"{RESULTS}/logs/leaderboard.log",
    benchmark:
        f"{RESULTS}/benchmarks/leaderboard.tsv"
    localrule: True
    conda:
        "../../envs/table.yaml"
    params:
        cfg=config["leaderboard"],
    shell:
        "python -m rmflow leaderboard --scores {input.scores:q} --csv {output.csv:q} --md {output.md:q}"
        " --subsets {output.subsets:q} --summary {output.summary:q} --tex {output.tex:q} --significance {output.significance:q}"
        " --sources {output.sources:q} --published {input.published:q} --published-csv {output.published_csv:q}"
        " --published-md {output.published_md:q} --missing {output.missing:q}"
        " --bootstrap {params.cfg[bootstrap]}"
        " --seed {params.cfg[seed]} --level {params.cfg[level]} --ci-style {params.cfg[ci_style]} > {log:q} 2>&1"


rule plots:
    input:
        board=f"{RESULTS}/leaderboard.csv",
        scores=PLAN.score_files(),
    output:
        sections=report(
            f"{RESULTS}/plots/sections_ci.png",
            caption="../report/sections_ci.rst",
            category="2. Figures",
            labels={"figure": "scores with intervals"},
        ),
        sections_svg=f"{RESULTS}/plots/sections_ci.svg",
        length=report(
            f"{RESULTS}/plots/length_bias.png",
            caption="../report/length_bias.rst",
            category="2. Figures",
            labels={"figure": "length bias"},
        ),
        length_svg=f"{RESULTS}/plots/length_bias.svg",
        loss=report(
            f"{RESULTS}/plots/train_loss.png",
            caption="../report/train_loss.rst",
            category="2. Figures",
            labels={"figure": "training loss"},
        ),
        loss_svg=f"{RESULTS}/plots/train_loss.svg",
        metrics=report(
            f"{RESULTS}/plots/run_metrics.csv",
            caption="../report/run_metrics.rst",
            category="3. Runs",
            labels={"table": "per-run metrics"},
        ),
    log:
        f"{RESULTS}/logs/plots.log",
    benchmark:
        f"{RESULTS}/benchmarks/plots.tsv"
    localrule: True
    conda:
        "../../envs/table.yaml"
    params:
        models=PLAN.model_dir_args(),
    shell:
        "python -m rmflow plots --leaderboard {input.board:q} --scores {input.scores:q} --models {params.models:q}"
        " --out-dir $(dirname {output.sections:q}) > {log:q} 2>&1"


rule config_used:
    output:
        report(
            f"{RESULTS}/config_used.yaml",
            caption="../report/config.rst",
            category="3. Runs",
            labels={"table": "configuration"},
        ),
    log:
        f"{RESULTS}/logs/config_used.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        data=lambda wildcards: command_json(config, "the config used"),
    shell:
        "python -m rmflow write-json --yaml --out {output:q} --data={params.data:q} > {log:q} 2>&1"
