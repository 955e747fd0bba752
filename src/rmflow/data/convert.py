"""Converters from common layouts into standard pairwise rows.

Each converter takes one raw row and returns a list of standard rows (``chosen``/``rejected`` message lists) plus a
list of ``(reason, count)`` for pairs it deliberately did not emit, so nothing is dropped silently.
"""

from __future__ import annotations

import re
from typing import Callable

from rmflow.errors import RmflowError

Converted = tuple[list[dict], list[str]]

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


def parse_hh_transcript(text: str) -> list[dict]:
    """Split an Anthropic HH transcript (``\\n\\nHuman: …\\n\\nAssistant: …``) into messages."""
    if not isinstance(text, str):
        raise ValueError("transcript must be a string")
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise ValueError("text before the first '\\n\\nHuman:' marker")
    messages = []
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        messages.append({"role": role, "content": content.strip()})
    if not messages:
        raise ValueError("no '\\n\\nHuman:'/'\\n\\nAssistant:' turns found")
    return messages


def from_standard(row: dict) -> Converted:
    return [row], []


def from_hh(row: dict) -> Converted:
    out = dict(row)
    for field in ("chosen", "rejected"):
        if field not in row:
            out.pop(field, None)  # validation reports the missing field with its row number
            continue
        try:
            out[field] = parse_hh_transcript(row[field])
        except ValueError as exc:
            raise RmflowError(f"not an HH transcript: {exc}", file=row.get("__file__"), row=row.get("__row__"),
                              field=field) from exc
    return [out], []


def _as_context(prompt: object, where: dict) -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return list(prompt)
    raise RmflowError("must be a string or a list of messages", file=where.get("__file__"), row=where.get("__row__"),
                      field="prompt")


def from_rewardbench(row: dict) -> Converted:
    """RewardBench rows: ``prompt`` (string or messages), ``chosen``/``rejected`` answer strings."""
    for field in ("prompt", "chosen", "rejected"):
        if field not in row:
            raise RmflowError("is missing", file=row.get("__file__"), row=row.get("__row__"), field=field)
    context = _as_context(row["prompt"], row)
    out = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected")}
    out["chosen"] = context + [{"role": "assistant", "content": row["chosen"]}]
    out["rejected"] = context + [{"role": "assistant", "content": row["rejected"]}]
    return [out], []


def ratings_to_pairs(row: dict, mode: str) -> Converted:
    """Rating rows ``{prompt, responses[], scores[]}`` to pairs.

    ``best_vs_each``: the top-scored response against every strictly lower one; ``best_vs_worst``: one pair.
    Responses tied with the best score are never paired with it and are counted as ``equal_scores``.
    """
    for field in ("prompt", "responses", "scores"):
        if field not in row:
            raise RmflowError("is missing", file=row.get("__file__"), row=row.get("__row__"), field=field)
    responses, scores = row["responses"], row["scores"]
    if not isinstance(responses, list) or not isinstance(scores, list) or len(responses) != len(scores):
        raise RmflowError("'responses' and 'scores' must be lists of the same length", file=row.get("__file__"),
                          row=row.get("__row__"), field="scores")
    context = _as_context(row["prompt"], row)
    best = max(range(len(scores)), key=lambda i: scores[i])
    lower = [i for i in range(len(scores)) if scores[i] < scores[best]]
    dropped = ["equal_scores"] * (len(scores) - 1 - len(lower))
    if mode == "best_vs_worst" and lower:
        worst = min(lower, key=lambda i: scores[i])
        dropped += ["not_best_vs_worst"] * (len(lower) - 1)
        lower = [worst]
    pairs = [
        {
            "chosen": context + [{"role": "assistant", "content": responses[best]}],
            "rejected": context + [{"role": "assistant", "content": responses[i]}],
            "__row__": row.get("__row__"),
            "__file__": row.get("__file__"),
        }
        for i in lower
    ]
    return pairs, dropped


CONVERTERS: dict[str, Callable[[dict], Converted]] = {
    "standard": from_standard,
    "hh": from_hh,
    "rewardbench": from_rewardbench,
    "ratings_best_vs_each": lambda row: ratings_to_pairs(row, "best_vs_each"),
    "ratings_best_vs_worst": lambda row: ratings_to_pairs(row, "best_vs_worst"),
}


def get_converter(fmt: str) -> Callable[[dict], Converted]:
    try:
        return CONVERTERS[fmt]
    except KeyError:
        raise RmflowError(f"unknown data format '{fmt}' (known: {', '.join(CONVERTERS)})", field="format") from None
