# rmflow: train reward models (methods x base models), evaluate them RewardBench-style, gather a leaderboard.
#   laptop:  snakemake --profile profiles/local all
#   cluster: snakemake --profile profiles/slurm --configfile config/paper.yaml all
from snakemake.utils import min_version

min_version("9.19")


configfile: "config/config.yaml"


# snakemake --report results/report.html: leaderboard, figures, configuration and per-run metrics in one file
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/bases.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/ssrm.smk"
include: "workflow/rules/stages.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/bestofn.smk"
include: "workflow/rules/leaderboard.smk"


rule all:
    default_target: True
    input:
        PLAN.targets(),
