"""Converters from common preference layouts into standard pairwise rows.

Each converter takes one raw row and returns a list of standard rows (``chosen``/``rejected`` message lists) plus a
list of event names (a pair it deliberately did not emit, turns it merged), which the prepare report counts, so
nothing is dropped or changed silently. A row that does not fit the layout at all raises ``LayoutError``; the
prepare step turns it into an error naming the data set, the format, the row and the columns it saw.
"""

from __future__ import annotations

import re

Converted = tuple[list[dict], list[str]]

_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
HELPSTEER2_TURN = "<extra_id_1>"


class LayoutError(ValueError):
    """A raw row does not fit its declared format; ``field`` names the column at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class RowOffTemplate(LayoutError):
    """One row's text does not follow its format's template (the format itself fits the data set): under
    ``on_invalid: skip`` it is dropped and counted under ``reason``; under ``error`` it stops naming the row."""

    def __init__(self, field: str, message: str, reason: str):
        super().__init__(field, message)
        self.reason = reason


def require(row: dict, *fields: str) -> None:
    for field in fields:
        if field not in row:
            raise LayoutError(field, "is missing")


def hh_turns(text: str) -> tuple[list[dict], int]:
    """Messages of an Anthropic HH transcript and how many consecutive same-speaker turns were merged into one.

    The raw HH test transcripts hold a few places where the Assistant speaks twice in a row (e.g. row 39 of the
    helpful split); the two turns are joined with a blank line rather than the row being rejected."""
    if not isinstance(text, str):
        raise ValueError("transcript must be a string")
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise ValueError("text before the first '\\n\\nHuman:' marker")
    messages, merged = [], 0
    for speaker, content in zip(parts[1::2], parts[2::2]):
        role = "user" if speaker == "Human" else "assistant"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] = f"{messages[-1]['content']}\n\n{content.strip()}".strip()
            merged += 1
            continue
        messages.append({"role": role, "content": content.strip()})
    if not messages:
        raise ValueError("no '\\n\\nHuman:'/'\\n\\nAssistant:' turns found")
    return messages, merged


def parse_hh_transcript(text: str) -> list[dict]:
    """Split an Anthropic HH transcript (``\\n\\nHuman: …\\n\\nAssistant: …``) into messages."""
    return hh_turns(text)[0]


def from_standard(row: dict) -> Converted:
    return [row], []


def from_hh(row: dict) -> Converted:
    out, events = dict(row), []
    for field in ("chosen", "rejected"):
        if field not in row:
            out.pop(field, None)  # validation reports the missing field with its row number
            continue
        try:
            out[field], merged = hh_turns(row[field])
        except ValueError as exc:
            raise LayoutError(field, f"not an HH transcript: {exc}") from exc
        events += ["merged_consecutive_turns"] * merged
    return [out], events


def as_context(prompt: object, field: str = "prompt") -> list[dict]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list):
        return list(prompt)
    raise LayoutError(field, "must be a string or a list of messages")


def from_rewardbench(row: dict) -> Converted:
    """RewardBench rows: ``prompt`` (string or messages), ``chosen``/``rejected`` answer strings."""
    require(row, "prompt", "chosen", "rejected")
    context = as_context(row["prompt"])
    out = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected")}
    out["chosen"] = context + [{"role": "assistant", "content": row["chosen"]}]
    out["rejected"] = context + [{"role": "assistant", "content": row["rejected"]}]
    return [out], []


def ratings_to_pairs(row: dict, mode: str) -> Converted:
    """Rating rows ``{prompt, responses[], scores[]}`` to pairs.

    ``best_vs_each``: the top-scored response against every strictly lower one; ``best_vs_worst``: one pair.
    Responses tied with the best score are never paired with it and are counted as ``equal_scores``.
    """
    require(row, "prompt", "responses", "scores")
    responses, scores = row["responses"], row["scores"]
    if not isinstance(responses, list) or not isinstance(scores, list) or len(responses) != len(scores):
        raise LayoutError("scores", "'responses' and 'scores' must be lists of the same length")
    context = as_context(row["prompt"])
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


def helpsteer2_context(prompt: object) -> list[dict]:
    """HelpSteer2 prompts hold earlier turns inline: pieces split on ``<extra_id_1>``, each later piece's first line
    naming its speaker (``User``/``Assistant``); the first piece is the opening user turn."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise LayoutError("prompt", "must be a non-empty string")
    pieces = prompt.split(HELPSTEER2_TURN)
    messages = [{"role": "user", "content": pieces[0].strip()}]
    for piece in pieces[1:]:
        speaker, _, content = piece.partition("\n")
        role = {"user": "user", "assistant": "assistant"}.get(speaker.strip().lower())
        if role is None:
            raise LayoutError("prompt", f"a '{HELPSTEER2_TURN}' turn starts with '{speaker.strip()[:20]}', "
                                        "not 'User' or 'Assistant'")
        messages.append({"role": role, "content": content.strip()})
    return messages


def from_helpsteer2_preference(row: dict) -> Converted:
    """HelpSteer2 preference rows ``{prompt, response_1, response_2, preference_strength}``.

    A negative strength prefers response_1, a positive one response_2 (-3 .. 3, HelpSteer2-Preference's scale); 0 is
    a tie, which the seed leaves undocumented: here it gives no pair and is counted as ``tie``. The pair keeps
    ``strength`` = |preference_strength|, usable as a BT margin (``train.margin_field: strength``)."""
    require(row, "prompt", "response_1", "response_2", "preference_strength")
    strength = row["preference_strength"]
    if not isinstance(strength, (int, float)) or isinstance(strength, bool):
        raise LayoutError("preference_strength", f"must be a number, not {strength!r}")
    if strength == 0:
        return [], ["tie"]
    context = helpsteer2_context(row["prompt"])
    good, bad = (row["response_1"], row["response_2"]) if strength < 0 else (row["response_2"], row["response_1"])
    extras = {k: v for k, v in row.items() if k not in ("prompt", "response_1", "response_2", "preference_strength")}
    return [{**extras, "chosen": context + [{"role": "assistant", "content": good}],
             "rejected": context + [{"role": "assistant", "content": bad}], "strength": abs(strength)}], []


_PM_TURN = re.compile(r"\n\n<turn> (user|assistant|system)\n ")


def parse_pm_context(text: str) -> list[dict]:
    """The inverse of the pair-PM context template (``\\n`` + per turn ``\\n\\n<turn> {role}\\n {content}`` +
    ``\\n\\n\\n``; methods-detail.md §2)."""
    if not (text.startswith("\n") and text.endswith("\n\n\n")):
        raise LayoutError("messages", "the [CONTEXT] part is not in the pair-PM context template")
    parts = _PM_TURN.split(text[1:-3])
    if parts[0] or len(parts) < 3:
        raise LayoutError("messages", "the [CONTEXT] part holds no '<turn> user' turn")
    return [{"role": role, "content": content} for role, content in zip(parts[1::2], parts[2::2])]


def from_pair_pm_messages(row: dict) -> Converted:
    """Pair-PM SFT rows ``{messages: [user "[CONTEXT] … [RESPONSE A] … [RESPONSE B] … \\n", assistant A|B|Same]}``
    (RLHFlow's PM training sets) back to standard pairs; the pair-PM method renders them again, identically. A
    ``Same`` row (RRM's neutral label) has no preferred answer: no pair, counted as ``tie``."""
    require(row, "messages")
    messages = row["messages"]
    if not isinstance(messages, list) or len(messages) != 2 or not all(isinstance(m, dict) for m in messages):
        raise LayoutError("messages", "must be [user PM prompt, assistant answer]")
    prompt, label = str(messages[0].get("content", "")), str(messages[1].get("content", "")).strip()
    if label == "Same":
        return [], ["tie"]
    if label not in ("A", "B"):
        raise RowOffTemplate("messages", f"the answer is {label[:20]!r}, not A, B or Same", "pm_answer_not_a_b_same")
    head, marker_a, marker_b, tail = "[CONTEXT] ", "\n\n\n [RESPONSE A] ", " [RESPONSE B] ", " \n"
    if not prompt.startswith(head) or not prompt.endswith(tail) or prompt.count(marker_a) != 1 \
            or prompt.count(marker_b) != 1 or prompt.index(marker_a) > prompt.index(marker_b):
        raise RowOffTemplate("messages", "the user turn is not '[CONTEXT] … [RESPONSE A] … [RESPONSE B] … \\n' "
                                         "with each marker once", "pm_prompt_off_template")
    context_end = prompt.index(marker_a) + 3  # the context keeps its closing "\n\n\n"
    context = parse_pm_context(prompt[len(head):context_end])
    answer_a = prompt[prompt.index(marker_a) + len(marker_a):prompt.index(marker_b)]
    answer_b = prompt[prompt.index(marker_b) + len(marker_b):-len(tail)]
    good, bad = (answer_a, answer_b) if label == "A" else (answer_b, answer_a)
    extras = {k: v for k, v in row.items() if k != "messages"}
    return [{**extras, "chosen": context + [{"role": "assistant", "content": good}],
             "rejected": context + [{"role": "assistant", "content": bad}]}], []
