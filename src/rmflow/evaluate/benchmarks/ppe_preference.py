"""PPE Human Preference (Frick et al. 2024, "How to Evaluate Reward Models for RLHF", arXiv:2410.14872; hub
``lmarena-ai/PPE-Human-Preference-V1``, split ``test``, 16,038 Chatbot Arena battles).

Rows: ``question_id, prompt, response_1, response_2, winner`` (+ category tags). The accuracy is the share of
decisive battles (``winner`` names one side: ``model_a`` / ``model_b``) where the reward of the human's winner is
strictly higher (a tie loses); battles the human called a tie carry no preference and are left out, counted by
reason in the prepare report. One number (micro accuracy); the official scorer (lmarena/PPE) could not be read
here, so the rule follows the paper's definition of accuracy and is recorded as such.
"""

from __future__ import annotations

from rmflow.data.convert import LayoutError
from rmflow.evaluate.benchmarks import Skip, comparison_wins

NAME = "ppe_preference"
SOURCE = "PPE paper (arXiv:2410.14872) accuracy on lmarena-ai/PPE-Human-Preference-V1"
TIE_RULE = "a tie loses (strict >); human ties are left out"
COLUMNS = ()
WINNERS = {"model_a": 0, "model_b": 1}


def convert(raw: dict) -> dict:
    for field in ("question_id", "prompt", "response_1", "response_2", "winner"):
        if raw.get(field) is None:
            raise LayoutError(field, "is missing (PPE rows: question_id, prompt, response_1, response_2, winner)")
    winner = str(raw["winner"])
    if winner.startswith("tie"):
        raise Skip(f"human tie ({winner})")
    if winner not in WINNERS:
        raise LayoutError("winner", f"must be model_a, model_b or a tie, not {winner!r}")
    first = WINNERS[winner]
    return {"id": str(raw["question_id"]), "subset": "preference",
            "context": [{"role": "user", "content": str(raw["prompt"])}],
            "candidates": [str(raw["response_1"]), str(raw["response_2"])], "comparisons": [[first, 1 - first]]}


def credit(item: dict, scores: list[float] | None = None, orders: list | None = None) -> dict:
    return {"correct": comparison_wins(item, scores, orders)[0]}


def score_fn(per_subset: dict[str, tuple[float, int]]) -> dict:
    return {"Score": per_subset["preference"][0] if "preference" in per_subset else None}
