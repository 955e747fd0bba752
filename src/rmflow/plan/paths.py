"""Where a run's outputs live: one table, read by the rules as Snakemake patterns and by the code as paths.

``pattern("model")`` is ``results/models/{method}/{base}``, its braces left for Snakemake's wildcards; ``path("model",
method="bt", base="tiny")`` is ``results/models/bt/tiny``. Every model is under ``models/``, whatever its method (a
staged method's last stage writes it there, its other stages under ``stages/``), but for SSRM's, whose own rules keep
each round's model under ``ssrm/<base>/iter<k>/model`` and declare the last through its ``final_model_dir`` hook; the
plan's ``model_dir`` gives every reader (plots, metrics, scoring) the right folder. The other stages cannot sit inside
the model's folder: Snakemake refuses an output inside another job's output directory (ChildIOException) and deletes a
job's outputs before it runs, so the last stage would wipe the stages it reads. Logs and benchmark files are each
rule's own and stay in its rule file.
"""

from __future__ import annotations

RESULTS = "results"

PATHS = {
    "prepared": "data/prepared/{dataset}.parquet",  # a data set's rows after prepare-data
    "prepared_report": "data/prepared/{dataset}.report.json",
    "transformed": "data/transformed/{method}/{base}.parquet",  # a method's own data step
    "transformed_report": "data/transformed/{method}/{base}.report.json",
    "eval_rows": "data/eval/{eval_set}.jsonl",  # an eval set's rows after prepare-eval
    "eval_report": "data/eval/{eval_set}.report.json",
    "eval_checked": "data/eval/checked.json",  # every eval set prepared: what the first data job waits for
    "base_spec": "specs/bases/{built}.json",
    "base": "bases/{built}",  # a base model rmflow builds (tiny, GGUF)
    "run_spec": "specs/runs/{method}/{base}.json",
    "model": "models/{method}/{base}",  # every model, trained or set up (SSRM: its final_model_dir)
    "stage": "stages/{method}/{base}/{stage}",  # a multi-stage method's stages but the last
    "scores": "eval/{eval_set}/{method}/{base}/scores.json",
    "examples": "eval/{eval_set}/{method}/{base}/examples.parquet",
    "bestofn": "bestofn/{set}/{method}/{base}.json",
    "rank_stats": "rank/{method}/{base}/stats.json",  # the ranking's other files sit beside it
}


def pattern(name: str) -> str:
    """The Snakemake pattern of an output: its wildcards in braces."""
    return f"{RESULTS}/{PATHS[name]}"


def path(name: str, **values: str) -> str:
    """The path of one output (every wildcard given)."""
    return pattern(name).format(**values)
