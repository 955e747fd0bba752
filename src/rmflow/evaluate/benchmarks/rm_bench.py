"""RM-Bench (Liu et al. 2024; hub ``THU-KEG/RM-Bench``), scored as ``scripts/utils.py::compute_accuracy`` of
THU-KEG/RM-Bench @ 73c52d7 does.

Rows: ``id, prompt, chosen[3], rejected[3]`` and a ``domain`` (chat, code, math, safety-refuse, safety-response;
``total_dataset.json`` carries it, the per-domain ``<domain>_filtered.json`` files do not and are named by it). The
three answers of each side are in the styles concise, detailed plain, detailed markdown.

Per domain a 3x3 matrix M[i][j] = share of rows where s(chosen_i) > s(rejected_j) (a tie loses); Hard = mean of the
upper triangle (a plainer chosen against a fancier rejected), Normal = the diagonal, Easy = the lower triangle; the
domain's score = the mean of the three. safety-refuse and safety-response rows are pooled into one ``safety``
matrix (``split_dataset_by_domain`` keeps ``domain.startswith("safety")``); Overall = the mean of chat, code, math
and safety.

A row's unit credit is its share of the nine comparisons won: a domain's mean credit is exactly the mean of its
Hard, Normal and Easy, each the mean of three cells.
"""

from __future__ import annotations

from pathlib import Path

from rmflow.data.convert import LayoutError
from rmflow.evaluate.benchmarks import comparison_wins, mean

NAME = "rm_bench"
SOURCE = "THU-KEG/RM-Bench scripts/utils.py (compute_accuracy, split_dataset_by_domain)"
TIE_RULE = "a tie loses (s(chosen) > s(rejected), strict)"
DOMAINS = ("chat", "code", "math", "safety")
SOURCE_DOMAINS = ("chat", "code", "math", "safety-refuse", "safety-response")
STYLES = 3
COLUMNS = ("Chat", "Code", "Math", "Safety")
DETAIL_COLUMNS = ("Hard", "Normal", "Easy")  # from details(): points without a bootstrap interval
HARD = [(i, j) for i in range(STYLES) for j in range(STYLES) if i < j]
NORMAL = [(i, i) for i in range(STYLES)]
EASY = [(i, j) for i in range(STYLES) for j in range(STYLES) if i > j]


def _source_domain(raw: dict) -> str:
    if raw.get("domain") is not None:
        domain = str(raw["domain"])
    else:  # data/<domain>_filtered.json: the file names the domain
        stem = Path(str(raw.get("__file__") or "")).name.split("_filtered")[0].removesuffix(".json")
        if stem not in SOURCE_DOMAINS:
            raise LayoutError("domain", "is missing and the file name does not give one of "
                                        f"{', '.join(SOURCE_DOMAINS)} (RM-Bench's <domain>_filtered.json)")
        domain = stem
    if not any(domain.startswith(d) for d in DOMAINS):
        raise LayoutError("domain", f"{domain!r} is none of {', '.join(SOURCE_DOMAINS)}")
    return domain


def convert(raw: dict) -> dict:
    for field in ("id", "prompt", "chosen", "rejected"):
        if raw.get(field) is None:
            raise LayoutError(field, "is missing (RM-Bench rows: id, prompt, chosen[3], rejected[3], domain)")
    for side in ("chosen", "rejected"):
        answers = raw[side]
        if not isinstance(answers, list) or len(answers) != STYLES or not all(isinstance(a, str) for a in answers):
            raise LayoutError(side, f"must be a list of {STYLES} answers (concise, detailed plain, detailed markdown)")
    if not isinstance(raw["prompt"], str) or not raw["prompt"].strip():
        raise LayoutError("prompt", "must be a non-empty string")
    source = _source_domain(raw)
    domain = next(d for d in DOMAINS if source.startswith(d))
    return {"id": f"{source}/{raw['id']}", "subset": domain, "source_domain": source,
            "context": [{"role": "user", "content": raw["prompt"]}],
            "candidates": list(raw["chosen"]) + list(raw["rejected"]),
            "comparisons": [[i, STYLES + j] for i in range(STYLES) for j in range(STYLES)]}


def credit(item: dict, scores: list[float] | None = None, orders: list | None = None) -> dict:
    wins = comparison_wins(item, scores, orders)
    cell = {(i, j): wins[i * STYLES + j] for i in range(STYLES) for j in range(STYLES)}
    return {"correct": sum(wins) / len(wins), "hard": mean(cell[c] for c in HARD),
            "normal": mean(cell[c] for c in NORMAL), "easy": mean(cell[c] for c in EASY),
            "wins": wins}


def score_fn(per_subset: dict[str, tuple[float, int]]) -> dict:
    domains = {d: per_subset[d][0] if d in per_subset else None for d in DOMAINS}
    overall = None if any(v is None for v in domains.values()) else mean(domains.values())
    return {"Score": overall, **{d.capitalize(): v for d, v in domains.items()}}


def details(items: list[dict], rows: list[dict]) -> dict:
    """Per domain: the 3x3 matrix and its Hard / Normal / Easy; and their means over the domains present."""
    by_domain: dict[str, list[list[float]]] = {}
    for item, row in zip(items, rows):
        by_domain.setdefault(item["subset"], []).append(row["wins"])
    out = {}
    for domain, all_wins in sorted(by_domain.items()):
        matrix = [[mean(w[i * STYLES + j] for w in all_wins) for j in range(STYLES)] for i in range(STYLES)]
        out[domain] = {"matrix": matrix, "n": len(all_wins),
                       "hard": mean(matrix[i][j] for i, j in HARD), "normal": mean(matrix[i][i] for i in range(STYLES)),
                       "easy": mean(matrix[i][j] for i, j in EASY)}
    levels = {level: mean(out[d][level] for d in out) for level in ("hard", "normal", "easy")}
    return {"domains": out, **levels}


def detail_columns(detail: dict) -> dict:
    """Numbers for the leaderboard row beside the domains: Hard, Normal and Easy averaged over the domains."""
    return {column: detail[column.lower()] for column in DETAIL_COLUMNS}
