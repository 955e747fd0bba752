"""The standard pairwise row and its validation rules (methods.md, "Common data contract").

A standard row has ``chosen`` and ``rejected``, each a list of ``{role, content}`` messages. An optional first
``system`` turn is allowed (many preference sets carry system prompts; how it is rendered for a chat template that
rejects it is a per-base-model rule, ``system_turn``). After it, roles alternate user/assistant starting with user;
both lists have the same even length and identical turns except the last assistant turn; no content is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("user", "assistant")
SYSTEM = "system"


@dataclass(frozen=True)
class Problem:
    """Why one row is invalid: the field at fault and a reason code with a readable explanation."""

    field: str
    reason: str
    detail: str


def check_messages(messages: object, field: str) -> Problem | None:
    if not isinstance(messages, list) or not messages:
        return Problem(field, "not_a_message_list", "must be a non-empty list of {role, content} messages")
    offset = 1 if isinstance(messages[0], dict) and messages[0].get("role") == SYSTEM else 0
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            return Problem(f"{field}[{i}]", "not_a_message", "must be an object with 'role' and 'content'")
        if i >= offset and msg["role"] != ROLES[(i - offset) % 2]:
            first = " after the system turn" if offset else ""
            return Problem(
                f"{field}[{i}].role",
                "role_order",
                f"is '{msg['role']}' but turn {i} must be '{ROLES[(i - offset) % 2]}' (user/assistant alternate, "
                f"user first{first}; only turn 0 may be 'system')",
            )
        if not isinstance(msg["content"], str) or not msg["content"].strip():
            return Problem(f"{field}[{i}].content", "empty_content", "is empty or not a string")
    if len(messages) == offset:
        return Problem(field, "no_final_answer", "holds only a system turn")
    if (len(messages) - offset) % 2:
        return Problem(field, "no_final_answer", "must end with an assistant turn")
    return None


def check_pair(row: object) -> Problem | None:
    """Return the first problem with a standard pairwise row, or None when it is valid."""
    if not isinstance(row, dict):
        return Problem("<row>", "not_an_object", "each row must be a JSON object")
    for field in ("chosen", "rejected"):
        if field not in row:
            return Problem(field, "missing_field", "is missing")
    for field in ("chosen", "rejected"):
        problem = check_messages(row[field], field)
        if problem:
            return problem
    chosen, rejected = row["chosen"], row["rejected"]
    if len(chosen) != len(rejected):
        return Problem(
            "rejected", "length_mismatch", f"has {len(rejected)} turns but chosen has {len(chosen)}"
        )
    for i, (a, b) in enumerate(zip(chosen[:-1], rejected[:-1])):
        if a["content"] != b["content"] or a["role"] != b["role"]:
            return Problem(
                f"rejected[{i}].content",
                "context_mismatch",
                "differs from chosen: chosen and rejected must share the same prompt (all turns but the last)",
            )
    return None


def check_training_pair(row: object) -> Problem | None:
    """``check_pair`` plus what only training data must not hold: a pair whose two answers are identical teaches
    nothing and scores as a tie (evaluation sets keep such rows: the official rules score them 0)."""
    problem = check_pair(row)
    if problem is None and row["chosen"][-1]["content"] == row["rejected"][-1]["content"]:
        return Problem("rejected[-1].content", "identical_responses", "is identical to the chosen answer")
    return problem
