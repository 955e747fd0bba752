"""PPE Correctness (Frick et al. 2024, arXiv:2410.14872; hub ``lmarena-ai/PPE-{MMLU-Pro,MATH,GPQA,MBPP-Plus,
IFEval}-Best-of-K``, split ``train``): K = 32 sampled answers per prompt, each verified correct or not.

Rows: ``question_id, prompt, response_1 .. response_K, scores`` (K booleans: answer k is correct) and
``sampled_conflict_pairs`` (index pairs of one correct and one incorrect answer; 0-based into the responses).
The pair accuracy of a domain is the share of its conflict pairs where the correct answer's reward is strictly
higher (a tie loses); Overall = the unweighted mean of the five domains. The domain is the row's ``domain`` field
or, absent, the hub id the row was read from (``PPE-MATH-Best-of-K`` -> math). A conflict pair is one unit.
"""

from __future__ import annotations

import re

from rmflow.data.convert import LayoutError
from rmflow.evaluate.benchmarks import comparison_wins, mean

NAME = "ppe_correctness"
SOURCE = "PPE paper (arXiv:2410.14872) pair accuracy on lmarena-ai/PPE-*-Best-of-K sampled_conflict_pairs"
TIE_RULE = "a tie loses (strict >)"
DOMAINS = ("mmlu_pro", "math", "gpqa", "mbpp_plus", "ifeval")
COLUMNS = ("MMLU-Pro", "MATH", "GPQA", "MBPP-Plus", "IFEval")
_HUB_DOMAIN = {"mmlu-pro": "mmlu_pro", "math": "math", "gpqa": "gpqa", "mbpp-plus": "mbpp_plus", "ifeval": "ifeval"}


def domain_of(raw: dict) -> str:
    if raw.get("domain") is not None:
        domain = str(raw["domain"]).lower().replace("-", "_")
    else:
        match = re.search(r"PPE-(.+?)-Best-of-K", str(raw.get("__file__") or raw.get("__source__") or ""), re.I)
        domain = _HUB_DOMAIN.get(match.group(1).lower(), "") if match else ""
    if domain not in DOMAINS:
        raise LayoutError("domain", f"is none of {', '.join(DOMAINS)} (give a domain field or read the rows from "
                                    "lmarena-ai/PPE-<domain>-Best-of-K)")
    return domain


def _responses(raw: dict) -> list[str]:
    keys = sorted((int(k.split("_")[1]), k) for k in raw if re.fullmatch(r"response_\d+", k))
    if not keys or [n for n, _ in keys] != list(range(1, len(keys) + 1)):
        raise LayoutError("response_1", "responses must be response_1 .. response_K, none missing")
    return [str(raw[k]) for _, k in keys]


def convert(raw: dict) -> list[dict]:
    """One item per conflict pair: the pair is the unit the accuracy counts."""
    for field in ("question_id", "prompt", "scores", "sampled_conflict_pairs"):
        if raw.get(field) is None:
            raise LayoutError(field, "is missing (PPE correctness rows: question_id, prompt, response_1..K, "
                                     "scores, sampled_conflict_pairs)")
    responses, correct = _responses(raw), raw["scores"]
    if not isinstance(correct, list) or len(correct) != len(responses):
        raise LayoutError("scores", f"must hold one boolean per response ({len(responses)})")
    domain, items = domain_of(raw), []
    for i, j in raw["sampled_conflict_pairs"]:
        if not (0 <= i < len(responses) and 0 <= j < len(responses)) or bool(correct[i]) == bool(correct[j]):
            raise LayoutError("sampled_conflict_pairs", f"[{i}, {j}] is not one correct and one incorrect response")
        good, bad = (i, j) if correct[i] else (j, i)
        items.append({"id": f"{domain}:{raw['question_id']}:{good}>{bad}", "subset": domain,
                      "context": [{"role": "user", "content": str(raw["prompt"])}],
                      "candidates": [responses[good], responses[bad]], "comparisons": [[0, 1]]})
    return items


def credit(item: dict, scores: list[float] | None = None, orders: list | None = None) -> dict:
    return {"correct": comparison_wins(item, scores, orders)[0]}


def score_fn(per_subset: dict[str, tuple[float, int]]) -> dict:
    domains = {d: per_subset[d][0] if d in per_subset else None for d in DOMAINS}
    overall = None if any(v is None for v in domains.values()) else mean(domains.values())
    return {"Score": overall, **dict(zip(COLUMNS, domains.values()))}
