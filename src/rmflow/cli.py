"""``rmflow <command>``: the one entry point every Snakemake rule, sbatch script and test calls.

Each subcommand parses its arguments and calls one module's ``main``; no logic lives here. User mistakes
(``RmflowError``) print one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rmflow import commands, methods
from rmflow.errors import RmflowError


def _compute_args(p: argparse.ArgumentParser) -> None:
    """Options every scoring step shares: rows per forward pass and torch threads (the rule's threads)."""
    p.add_argument("--batch-size", type=int, default=16, help="rows per forward pass")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmflow", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--rule", default=None, help="the workflow rule running this command (named in errors)")
    parser.add_argument("--gpus", type=int, default=0,
                        help="GPUs the job asked for: refuse to start when fewer CUDA devices are visible")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-synthetic", help="generate the synthetic preference suite")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=160, help="train pairs per subset")
    p.add_argument("--n-test", type=int, default=40, help="test rows per subset")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=commands.cmd_make_synthetic)

    p = sub.add_parser("prepare-data", help="load, convert and validate rows of any format into canonical parquet")
    p.add_argument("--source", required=True, nargs="+",
                   help="local .jsonl/.json/.parquet file or folder, or a hub dataset id; several are concatenated")
    p.add_argument("--name", default=None, help="the data set's config name (named in errors)")
    p.add_argument("--format", default="standard", help="a layout name; `rmflow formats` lists them")
    p.add_argument("--split", default="train")
    p.add_argument("--revision", default=None)
    p.add_argument("--data-dir", default=None, help="hub data sets: the data_dir inside the repository")
    p.add_argument("--where", default=None,
                   help="keep only rows whose columns equal these values: 'split=train [col=value ...]'")
    p.add_argument("--on-invalid", default="error", choices=["error", "skip"])
    p.add_argument("--out", required=True)
    p.add_argument("--report", required=True)
    p.set_defaults(func=commands.cmd_prepare_data)

    p = sub.add_parser("prepare-eval", help="load, convert and validate an eval set's rows once (before any GPU job)")
    p.add_argument("--name", default=None, help="the eval set's name (written into the report)")
    p.add_argument("--data", required=True, help="local file/folder or hub id (allenai/reward-bench)")
    p.add_argument("--benchmark", required=True, help="rewardbench_v1 | rewardbench_v2")
    p.add_argument("--split", default="filtered")
    p.add_argument("--revision", default=None)
    p.add_argument("--out", required=True, help="the rows, JSON lines")
    p.add_argument("--report", required=True)
    p.set_defaults(func=commands.cmd_prepare_eval)

    p = sub.add_parser("make-samples", help="small local samples of the paper recipe's hub data sets, in their "
                                            "layouts, from a folder of real rows (tests/configs/paper-smoke.yaml)")
    p.add_argument("--shared", required=True,
                   help="the folder of real rows the samples are cut from (rmflow.data.samples names its files)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--sizes", default="", help="'pairs=32 step_rows=32 ...' (rmflow.data.samples.DEFAULTS)")
    p.set_defaults(func=commands.cmd_make_samples)

    p = sub.add_parser("rehearsal-hub", help="a Hugging Face cache of layout-true stand-ins for every hub id the "
                       "configs name (HF_HOME=OUT HF_HUB_OFFLINE=1 loads them by id)")
    p.add_argument("--out", required=True)
    p.add_argument("--config", nargs="+", default=["config/config.yaml", "config/paper.yaml"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=commands.cmd_rehearsal_hub)
    p = sub.add_parser("rehearsal-profile", help="the SLURM profile, CPU-sized and without GPUs, for a rehearsal")
    p.add_argument("--source", default="profiles/slurm")
    p.add_argument("--out", required=True)
    p.add_argument("--partition", default="debug")
    p.add_argument("--jobs", type=int, default=4)
    p.set_defaults(func=commands.cmd_rehearsal_profile)
    p = sub.add_parser("hub-check", help="every hub reference of the configs loadable where the jobs run (exists, "
                       "licence accepted, revision, split, data_dir; offline: cached)")
    p.add_argument("--configfile", nargs="+", required=True, help="the config layers, in Snakemake's order")
    p.set_defaults(func=commands.cmd_hub_check)
    p = sub.add_parser("plan", help="every job's estimated GPU memory, time and disk against its request and the "
                       "cluster; refuses what cannot finish (the SLURM run's onstart runs the same check)")
    p.add_argument("--configfile", nargs="*", default=[], help="config layers after config/config.yaml")
    p.add_argument("--profile", default=None, help="a Snakemake profile directory (its set-resources)")
    p.add_argument("--json", default=None, help="write one object per job here")
    p.add_argument("--sinfo", default="sinfo", help="the cluster's sinfo ('' to compare with the profile only)")
    p.add_argument("--directory", default=".", help="the workflow's directory (holds config/ and workflow/)")
    p.set_defaults(func=commands.cmd_plan)
    p = sub.add_parser("write-json", help="write a value the workflow computed (a run spec, the config used) to a "
                       "file, atomically, as rmflow writes JSON (or YAML)")
    p.add_argument("--out", required=True)
    p.add_argument("--data", required=True, help="the value as one line of JSON (give it as --data=...)")
    p.add_argument("--yaml", action="store_true", help="write it as YAML, keys in their order")
    p.set_defaults(func=commands.cmd_write_json)
    p = sub.add_parser("formats", help="list the data formats prepare-data reads and the kind of rows each gives")
    p.set_defaults(func=commands.cmd_formats)

    p = sub.add_parser("build-base", help="build a base model directory: a tiny model, or one converted from GGUF")
    p.add_argument("--spec", required=True, help="JSON {tiny: {...}} or {gguf: {file | package}, chat_template}")
    p.add_argument("--corpus", default=None, help="tiny: prepared pairs whose texts train the tokenizer")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=commands.cmd_build_base)

    p = sub.add_parser("train", help="train one method on one base model from a run spec")
    p.add_argument("--spec", required=True, help="run spec JSON (results/runs/<method>/<base>.json)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--data", default=None, help="train on this file instead of the spec's train_data")
    p.add_argument("--init", default=None, help="start from this model directory instead of the spec's base")
    p.add_argument("--threads", type=int, default=None, help="torch threads in all (split between processes)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="resumable checkpoints here (outside the rule's outputs); resumes from the newest good one")
    p.add_argument("--tracking-dir", default=None,
                   help="train.report_to: TensorBoard/W&B files here (default results/tracking/<method>/<base>)")
    p.add_argument("--processes", type=int, default=1, help="processes per machine (one per GPU) via accelerate")
    p.add_argument("--machines", type=int, default=1, help="machines (SLURM nodes), one launcher on each")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("transform", help="a method's own data preparation (e.g. pair-PM rows, RRM augmentation)")
    p.add_argument("--spec", required=True)
    p.add_argument("--data", required=True, help="prepared standard-row parquet")
    p.add_argument("--out", required=True)
    p.add_argument("--report", required=True, help="JSON with the row counts")
    p.set_defaults(func=commands.cmd_transform)

    p = sub.add_parser("evaluate", help="score a RewardBench-format set and write examples.parquet + scores.json")
    p.add_argument("--model-dir", default=None, help="a model rmflow trained (with --method)")
    p.add_argument("--method", default=None)
    p.add_argument("--external", default=None, help="or any existing reward model: a hub id or local directory")
    p.add_argument("--scorer", default=None, choices=["classifier", "custom_forward", "pairwise_pm", "judge_endpoint"],
                   help="--external: how it scores (default classifier)")
    p.add_argument("--logit", type=int, default=None, help="--external classifier: which output is the reward")
    p.add_argument("--score-position", default=None, choices=["after_generation_prompt", "user_turn_end"],
                   help="--external pairwise_pm: where the A/B logits are read (user_turn_end: RLHFlow's own scorer)")
    p.add_argument("--model-revision", default=None, help="--external: hub revision")
    p.add_argument("--trust-remote-code", action="store_true", default=None,
                   help="--external: allow the model's own code (off by default)")
    p.add_argument("--endpoint", default=None, help="--scorer judge_endpoint: OpenAI-compatible base URL")
    p.add_argument("--max-length", type=int, default=None, help="--external: tokens per scored text (4096)")
    p.add_argument("--data", required=True, help="local file/folder or hub id (allenai/reward-bench)")
    p.add_argument("--split", default="filtered")
    p.add_argument("--revision", default=None)
    p.add_argument("--benchmark", default="rewardbench_v1", help="rewardbench_v1 | rewardbench_v2: rows and rules")
    p.add_argument("--sections", default=None, help="a rewardbench_v1 set's section map: rewardbench_v1 (official, "
                                                    "the default) | synthetic_v1")
    p.add_argument("--prepared", default=None,
                   help="rows rmflow prepare-eval validated (the workflow passes them); --data then names the source")
    p.add_argument("--tie-rule", default="official", choices=["official", "seed"])
    p.add_argument("--eval-set", required=True, help="name written into scores.json")
    p.add_argument("--base", required=True, help="base model name written into scores.json")
    p.add_argument("--out-dir", required=True)
    _compute_args(p)
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("submit", help="submit rmflow train/evaluate jobs (a sweep: several --job) with submitit")
    p.add_argument("--profile", default="profiles/slurm", help="SLURM profile whose resources the jobs get")
    p.add_argument("--rule", required=True, help="its set-resources entry: train_a100_80g, train_cpu, evaluate, ...")
    p.add_argument("--job", action="append", required=True,
                   help="one rmflow command line, e.g. 'train --spec s.json --out m'; repeat for a sweep")
    p.add_argument("--folder", default="results/scratch/submitit", help="submitit's logs and pickles")
    p.add_argument("--no-wait", action="store_true", help="print the job ids and return")
    p.set_defaults(func=commands.cmd_submit)

    p = sub.add_parser("leaderboard", help="gather scores.json files into the leaderboard tables")
    p.add_argument("--root", default="results/eval", help="gather every <eval set>/<method>/<base>/scores.json")
    p.add_argument("--scores", nargs="+", help="gather exactly these scores.json files instead of --root")
    p.add_argument("--csv", default="results/leaderboard.csv")
    p.add_argument("--md", default="results/leaderboard.md")
    p.add_argument("--subsets", default="results/leaderboard_subsets.csv")
    p.add_argument("--tex", default=None, help="also write a booktabs LaTeX table here")
    p.add_argument("--significance", default=None, help="also write paired tests against each set's best here")
    p.add_argument("--sources", default=None, help="also write each row's hub commits (model, base, data) here")
    p.add_argument("--published", default=None, help="published numbers of released models (config/published.yaml)")
    p.add_argument("--published-csv", default=None, help="ours vs published: CSV here")
    p.add_argument("--published-md", default=None, help="ours vs published: Markdown here")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--level", type=float, default=0.95)
    p.add_argument("--ci-style", default="pm", choices=["pm", "brackets"])
    p.add_argument("--print", action="store_true", help="also print the Markdown table")
    p.set_defaults(func=commands.cmd_leaderboard)

    p = sub.add_parser("plots", help="figures (PNG + SVG) and per-run metrics from the gathered results")
    p.add_argument("--leaderboard", required=True, help="leaderboard.csv with its _lo/_hi columns")
    p.add_argument("--scores", nargs="+", required=True, help="the scores.json files it was gathered from")
    p.add_argument("--models", nargs="*", default=[],
                   help="METHOD/BASE=DIR for every planned model (its train_log.jsonl and metrics.json)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=commands.cmd_plots)

    p = sub.add_parser("stage", help="one stage of a method of several (its STAGES: ArmoRM probe, gate; the tree "
                                     "probe, fit)")
    p.add_argument("--method", required=True)
    p.add_argument("--stage", required=True)
    p.add_argument("--spec", required=True)
    p.add_argument("--inputs", required=True, help='JSON {name: path or hub id}: what the stage reads '
                                                   '(the method\'s stage_inputs; e.g. {"backbone": ..., "data": ...})')
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=commands.cmd_stage)

    p = sub.add_parser("explain", help="why a model scores one conversation as it does (ArmoRM: its top-K "
                                       "objectives)")
    p.add_argument("--method", required=True, help="the method that trained the model (one with an explain hook)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--conversation", required=True, help="JSON: a message list or {messages: [...]}")
    p.add_argument("--top-k", type=int, default=3)
    p.set_defaults(func=commands.cmd_explain)

    p = sub.add_parser("bestofn", help="best-of-N accuracy of a scalar RM (run) or the gathered table (table)")
    p.add_argument("step", choices=["run", "table"])
    p.add_argument("--method")
    p.add_argument("--base")
    p.add_argument("--model-dir")
    p.add_argument("--data", help="prepared candidate sets (format bestofn: {prompt, answers[N], label[N]})")
    p.add_argument("--set", default=None, help="the candidate sets' data set name (written into the result)")
    p.add_argument("--steps-data", default="", help="prepared step-labelled chats for the PRM's step accuracy")
    p.add_argument("--step-text", default="", help='the set\'s step layout, JSON {"separator": ..., '
                                                   '"outcome_remove": [...]} (config datasets.<set>.steps)')
    p.add_argument("--resume-file", default=None, help="large sets: scores kept here chunk by chunk, resumed on rerun")
    p.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--subsets", type=int, default=16, help="random subsets per problem and N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--files", nargs="+")
    p.add_argument("--csv")
    p.add_argument("--png")
    p.add_argument("--svg", default=None)
    _compute_args(p)
    p.set_defaults(func=commands.cmd_bestofn)

    p = sub.add_parser("rank", help="rank n responses per prompt: scores, DPO pairs, top-k for rejection sampling")
    p.add_argument("--method", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--data", required=True, help="JSONL rows {prompt (string or messages), responses: [n]}")
    p.add_argument("--mode", default="knockout", choices=["knockout", "round_robin"],
                   help="pairwise methods only: how responses are compared")
    p.add_argument("--top-k", type=int, default=2)
    p.add_argument("--out-dir", required=True)
    _compute_args(p)
    p.set_defaults(func=commands.cmd_rank)

    p = sub.add_parser("methods", help="list the registered reward-model methods")
    p.set_defaults(func=commands.cmd_methods)

    # a method with rules of its own brings the command those rules call (SSRM's rounds: rmflow ssrm <step>)
    for name in methods.available():
        module = methods.get(name)
        if methods.has_hook(module, "add_command"):
            module.add_command(sub, _compute_args)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from rmflow.devices import require_gpus

        require_gpus(args.rule, args.gpus)
        args.func(args)
    except RmflowError as exc:
        print(f"rmflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
