"""Scoring commands: RewardBench evaluation, the leaderboard and figures, explanations, best-of-N, ranking."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.errors import RmflowError
from rmflow.options import Command, Compute, NoOptions, opt, set_threads


@dataclass(kw_only=True)
class Evaluate(Compute):
    model_dir: str | None = opt(None, "a model rmflow trained (with --method)")
    method: str | None = opt(None)
    external: str | None = opt(None, "or any existing reward model: a hub id or local directory")
    scorer: str | None = opt(None, "--external: how it scores (default classifier)",
                             choices=["classifier", "armo", "custom_forward", "pairwise_pm", "judge_endpoint"])
    logit: int | None = opt(None, "--external classifier: which output is the reward")
    score_position: str | None = opt(None, "--external pairwise_pm: where the A/B logits are read (user_turn_end: "
                                           "RLHFlow's own scorer)",
                                     choices=["after_generation_prompt", "user_turn_end"])
    model_revision: str | None = opt(None, "--external: hub revision")
    trust_remote_code: bool | None = opt(None, "--external: allow the model's own code (off by default)")
    endpoint: str | None = opt(None, "--scorer judge_endpoint: OpenAI-compatible base URL")
    max_length: int | None = opt(None, "--external: tokens per scored text (4096)")
    data: list[str] = opt(help="local files/folders or hub ids (allenai/reward-bench); several are concatenated",
                          nargs="+")
    split: list[str] = opt(factory=lambda: ["filtered"], help="one split, or several read from every source",
                           nargs="+")
    revision: list[str] | None = opt(None, "one revision for all sources, or one per source", nargs="+")
    benchmark: str = opt("rewardbench_v1", "rows and rules: rewardbench_v1 | rewardbench_v2 | rm_bench | "
                                           "judgebench | rmb | ppe_preference | ppe_correctness | processbench")
    chat_template: str = opt("model", "model: each model's own template; tulu: the RM-Bench/RMB official "
                                      "runners' default rendering (scalar models)", choices=["model", "tulu"])
    credit_rule: str = opt("first_chosen", "rewardbench_v2 outside Ties: first_chosen (official) | any_chosen",
                           choices=["first_chosen", "any_chosen"])
    ties_formula: str = opt("2025-06", "rewardbench_v2 Ties: 2025-06 (official) | 0.1.4 (the PyPI release)",
                            choices=["2025-06", "0.1.4"])
    sections: str | None = opt(None, "a rewardbench_v1 set's section map: rewardbench_v1 (official, the default) | "
                                     "synthetic_v1")
    prepared: str | None = opt(None, "rows rmflow prepare-eval validated (the workflow passes them); --data then "
                                     "names the source")
    tie_rule: str = opt("official", choices=["official", "seed"])
    eval_set: str = opt(help="name written into scores.json")
    base: str = opt(help="base model name written into scores.json")
    out_dir: str = opt(writes="dir")


def evaluate(a: Evaluate) -> None:
    from rmflow.evaluate import run

    set_threads(a.threads)
    external, method = None, a.method
    if a.external or a.endpoint:
        from rmflow import methods

        values = {"model": a.external, "scorer": a.scorer, "logit": a.logit, "revision": a.model_revision,
                  "score_position": a.score_position,
                  "trust_remote_code": a.trust_remote_code, "endpoint": a.endpoint, "max_length": a.max_length}
        external = methods.method_config(methods.RELEASED, {k: v for k, v in values.items() if v is not None},
                                         where="evaluate --external")
        method = methods.RELEASED
    elif not (a.model_dir and a.method):
        raise RmflowError("give --model-dir and --method (a model rmflow trained) or --external (any reward model)")
    from rmflow.evaluate.eval_sets import from_options

    source, split, revision = from_options(a.data, a.split, a.revision)
    run.main(a.model_dir, method, source, a.benchmark, a.out_dir, a.eval_set, a.base, split, revision, a.tie_rule,
             a.batch_size, external, sections=a.sections or None, prepared=a.prepared or None,
             chat_template=a.chat_template, credit_rule=a.credit_rule, ties_formula=a.ties_formula)


@dataclass(kw_only=True)
class Rescore:
    benchmark: str = opt(help="judgebench | rmb | rm_bench | ppe_preference | ppe_correctness | processbench")
    examples: str = opt(help="per-item rewards: rmflow's examples.parquet, JudgeBench's published outputs "
                             "(judge_name=reward_model ... .jsonl) or RMB's <model>_result.json")
    out_dir: str = opt(writes="dir")
    model: str | None = opt(None, "the model's name in scores.json (default: the file's name)")
    eval_set: str | None = opt(None, "the eval set name in scores.json (default: the benchmark)")


def rescore(a: Rescore) -> None:
    from rmflow.evaluate.benchmarks import rescore as run

    scores = run.main(a.benchmark, a.examples, a.out_dir, a.model, a.eval_set)
    score = "none (a headline cell is missing)" if scores["score"] is None else f"{100 * scores['score']:.2f}"
    print(f"{a.benchmark}: {score} over {scores['n_examples']} items ({scores['rescored_from']})")
    for column, value in scores["sections"].items():
        if value is not None:
            print(f"  {column}: {100 * value:.2f}")


@dataclass(kw_only=True)
class Leaderboard:
    root: str = opt("results/eval", "gather every <eval set>/<method>/<base>/scores.json")
    scores: list[str] | None = opt(None, "gather exactly these scores.json files instead of --root", nargs="+")
    csv: str = opt("results/leaderboard.csv", writes="file")
    md: str = opt("results/leaderboard.md", writes="file")
    subsets: str = opt("results/leaderboard_subsets.csv", writes="file")
    summary: str | None = opt(None, "also write the summary (a row per model, a column per eval set's headline) "
                                    "here as CSV", writes="file")
    tex: str | None = opt(None, "also write a booktabs LaTeX table here", writes="file")
    significance: str | None = opt(None, "also write paired tests against each set's best here", writes="file")
    sources: str | None = opt(None, "also write each row's hub commits (model, base, data) here", writes="file")
    published: str | None = opt(None, "published numbers of released models (config/published.yaml)")
    published_csv: str | None = opt(None, "ours vs published: CSV here", writes="file")
    published_md: str | None = opt(None, "ours vs published: Markdown here", writes="file")
    bootstrap: int = opt(1000, "bootstrap replicates")
    seed: int = opt(0)
    level: float = opt(0.95)
    ci_style: str = opt("pm", choices=["pm", "brackets"])
    missing: str | None = opt(None, "also write the planned rows without a score here (leaderboard_missing.csv; "
                                    "its header alone when none is missing)", writes="file")
    planned: str | None = opt(None, "a gather manifest (results/logs/gather/planned.json): gather those of its "
                                    "planned scores that exist and list the others in --missing")
    print: bool = opt(False, "also print the Markdown table")


def leaderboard(a: Leaderboard) -> None:
    from rmflow import leaderboard
    from rmflow.io import write_text
    from rmflow.leaderboard import missing

    if a.planned:  # after failed jobs: the planned scores that exist, and the rows of those that do not
        files, absent, planned = missing.from_manifest(a.planned)
    else:
        files, absent, planned = a.scores or leaderboard.find_scores(a.root), [], 0
    if a.missing:
        missing.write_missing(absent, a.missing)
    note = missing.note(len(absent), planned, a.missing or a.planned) if absent else ""
    if not files:
        write_text(a.md, note + "\nNo planned row has a score yet: there is no table to show.\n")
        raise RmflowError(f"no planned score exists yet: nothing to gather (see {a.missing})")
    options = leaderboard.Options(n_boot=a.bootstrap, seed=a.seed, level=a.level, ci_style=a.ci_style)
    markdown = leaderboard.main(files, a.csv, a.md, a.subsets, a.tex, a.significance, options, a.summary)
    if note:
        markdown = f"{note}\n{markdown}"
        write_text(a.md, markdown)
    if a.sources:
        from rmflow.leaderboard.sources import write_sources

        write_sources(files, a.sources)
    if a.published:
        from rmflow.leaderboard import published

        if not (a.published_csv and a.published_md):
            raise RmflowError("--published needs --published-csv and --published-md", field="published")
        published.main(a.csv, files, a.published, a.published_csv, a.published_md)
    if a.print:
        print(markdown)


@dataclass(kw_only=True)
class Gather:
    manifest: str = opt(help="results/logs/gather/planned.json, written by the workflow's onerror handler")


def gather(a: Gather) -> None:
    """After failed jobs: every gathered output the rules would write, from the files that exist
    (rmflow.plan.failures writes the manifest)."""
    import json
    from pathlib import Path

    content = json.loads(Path(a.manifest).read_text(encoding="utf-8"))
    out, cfg = content["results"], content["leaderboard"]
    leaderboard(Leaderboard(
        planned=a.manifest, missing=f"{out}/leaderboard_missing.csv", csv=f"{out}/leaderboard.csv",
        md=f"{out}/leaderboard.md", subsets=f"{out}/leaderboard_subsets.csv", tex=f"{out}/leaderboard.tex",
        summary=f"{out}/leaderboard_summary.csv",
        significance=f"{out}/pairwise_significance.csv", sources=f"{out}/leaderboard_sources.csv",
        published=cfg["published"], published_csv=f"{out}/leaderboard_published.csv",
        published_md=f"{out}/leaderboard_published.md", bootstrap=cfg["bootstrap"], seed=cfg["seed"],
        level=cfg["level"], ci_style=cfg["ci_style"]))
    present = [p for p in content["planned"] if Path(p["output"]).exists()]
    plots(Plots(leaderboard=f"{out}/leaderboard.csv", models=content["models"], out_dir=f"{out}/plots",
                scores=[p["output"] for p in present if p["benchmark"] != "bestofn"]))
    bestofn_files = [p["output"] for p in present if p["benchmark"] == "bestofn"]
    if bestofn_files:
        bestofn(BestOfN(step="table", files=bestofn_files, csv=f"{out}/bestofn.csv", png=f"{out}/bestofn.png",
                        svg=f"{out}/plots/bestofn.svg"))


@dataclass(kw_only=True)
class Plots:
    leaderboard: str = opt(help="leaderboard.csv with its _lo/_hi columns")
    scores: list[str] = opt(help="the scores.json files it was gathered from")
    models: list[str] = opt(help="METHOD/BASE=DIR for every planned model (its train_log.jsonl and metrics.json)",
                            factory=list)
    out_dir: str = opt(writes="dir")


def plots(a: Plots) -> None:
    from rmflow.leaderboard import plots

    plots.main(a.leaderboard, a.scores, a.models, a.out_dir)


@dataclass(kw_only=True)
class Explain:
    method: str = opt(help="the method that trained the model (one with an explain hook)")
    model_dir: str = opt()
    conversation: str = opt(help="JSON: a message list or {messages: [...]}")
    top_k: int = opt(3)


def explain(a: Explain) -> None:
    import json

    from rmflow import methods

    module = methods.get(a.method, where="--method")
    explain = methods.hook(module, "explain")
    if explain is None:
        raise RmflowError(f"method '{a.method}' has no explanation of its scores", field="method")
    try:
        conversation = json.loads(open(a.conversation, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as exc:
        raise RmflowError(f"unreadable conversation JSON ({exc})", file=a.conversation) from exc
    if isinstance(conversation, dict):
        conversation = conversation.get("messages", conversation.get("chosen"))
    print(explain(a.model_dir, conversation, a.top_k))


@dataclass(kw_only=True)
class BestOfN(Compute):
    step: str = opt(choices=["run", "table"], positional=True)
    method: str | None = opt(None)
    base: str | None = opt(None)
    model_dir: str | None = opt(None)
    data: str | None = opt(None, "prepared candidate sets (format bestofn: {prompt, answers[N], label[N]})")
    set: str | None = opt(None, "the candidate sets' data set name (written into the result)")
    steps_data: str = opt("", "prepared step-labelled chats for the PRM's step accuracy")
    step_text: str = opt("", 'the set\'s step layout, JSON {"separator": ..., "outcome_remove": [...]} (config '
                             "datasets.<set>.steps)")
    resume_file: str | None = opt(None, "large sets: scores kept here chunk by chunk, resumed on rerun")
    ns: list[int] = opt(factory=lambda: [1, 2, 4, 8], nargs="+")
    subsets: int = opt(16, "random subsets per problem and N")
    seed: int = opt(0)
    out: str | None = opt(None, writes="file")
    files: list[str] | None = opt(None, nargs="+")
    csv: str | None = opt(None, writes="file")
    png: str | None = opt(None, writes="file")
    svg: str | None = opt(None)


def bestofn(a: BestOfN) -> None:
    from rmflow.evaluate import bestofn

    set_threads(a.threads)
    if a.step == "run":
        import json

        try:
            step_text = json.loads(a.step_text or "{}")
        except json.JSONDecodeError as exc:
            raise RmflowError(f"--step-text is not JSON ({exc})", field="steps") from exc
        bestofn.main(a.method, a.base, a.model_dir, a.data, a.ns, a.subsets, a.seed, a.out, a.steps_data or None,
                     a.batch_size, a.set or None, step_text or None, a.resume_file or None)
    else:
        bestofn.table(a.files, a.csv, a.png, a.svg)


@dataclass(kw_only=True)
class Rank(Compute):
    method: str = opt()
    model_dir: str = opt()
    data: str = opt(help="JSONL rows {prompt (string or messages), responses: [n]}")
    mode: str = opt("knockout", "pairwise methods only: how responses are compared",
                    choices=["knockout", "round_robin"])
    top_k: int = opt(2)
    out_dir: str = opt(writes="dir")


def rank(a: Rank) -> None:
    from rmflow import rank

    set_threads(a.threads)
    rank.main(a.method, a.model_dir, a.data, a.out_dir, a.mode, a.top_k, a.batch_size)


def list_methods(a: NoOptions) -> None:
    from rmflow import methods

    for name in methods.available():
        print(name)


COMMANDS = [
    Command("evaluate", "score a RewardBench-format set and write examples.parquet + scores.json", Evaluate,
            evaluate),
    Command("rescore", "a benchmark's official rule on per-item rewards that exist (rmflow's examples.parquet, "
                       "JudgeBench's and RMB's published outputs): scores.json without a model", Rescore, rescore),
    Command("leaderboard", "gather scores.json files into the leaderboard tables", Leaderboard, leaderboard),
    Command("gather", "after failed jobs: the leaderboard, figures and best-of-N table from what exists, and the "
                      "list of what is missing", Gather, gather),
    Command("plots", "figures (PNG + SVG) and per-run metrics from the gathered results", Plots, plots),
    Command("explain", "why a model scores one conversation as it does (ArmoRM: its top-K objectives)", Explain,
            explain),
    Command("bestofn", "best-of-N accuracy of a scalar RM (run) or the gathered table (table)", BestOfN, bestofn),
    Command("rank", "rank n responses per prompt: scores, DPO pairs, top-k for rejection sampling", Rank, rank),
    Command("methods", "list the registered reward-model methods", NoOptions, list_methods),
]
