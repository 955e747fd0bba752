# Gather: every scores.json of this run -> leaderboard CSV/Markdown and the per-subset CSV.


rule leaderboard:
    input:
        PLAN.score_files(),
    output:
        csv=f"{RESULTS}/leaderboard.csv",
        md=f"{RESULTS}/leaderboard.md",
        subsets=f"{RESULTS}/leaderboard_subsets.csv",
    log:
        f"{RESULTS}/logs/leaderboard.log",
    benchmark:
        f"{RESULTS}/benchmarks/leaderboard.tsv"
    conda:
        "../../envs/table.yaml"
    localrule: True
    shell:
        "rmflow leaderboard --scores {input} --csv {output.csv} --md {output.md}"
        " --subsets {output.subsets} > {log} 2>&1"
