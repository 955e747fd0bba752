"""Converters for the layouts that are not preference pairs: attribute ratings (ArmoRM, the decision tree),
step-labelled solutions (PRM/ORM), best-of-N candidate sets and RewardBench 2 rows (methods-detail.md §10).

Each returns ``(rows, events)`` like the pair converters in ``convert.py`` and raises ``LayoutError`` for a row that
does not fit. The rows they emit have one canonical shape per kind (checked in ``formats.py``):
- attributes: ``{messages, attributes: {name: float | None}}``;
- steps: ``{messages}``, a chat whose every assistant turn is ``+`` or ``-`` (the PRM/ORM training layout), plus
  ``prompt``/``steps``/``labels`` when the source had them;
- candidates: ``{context: messages, answers: [str], labels: [0|1]}``;
- rewardbench2: ``{id, subset, prompt, chosen: [str], rejected: [str]}``.
"""

from __future__ import annotations

from rmflow.data.convert import Converted, LayoutError, as_context, helpsteer2_context, require

PLUS, MINUS = "+", "-"
HELPSTEER2_ATTRIBUTES = ("helpfulness", "correctness", "coherence", "complexity", "verbosity")
# columns of a multi-objective row that are not attributes (meta data the sets carry)
NOT_ATTRIBUTES = {"messages", "attributes", "id", "split", "source", "meta", "prompt", "response"}


def _rating(value: object, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):  # BeaverTails is_safe: True/False -> 1/0
        return float(value)
    if isinstance(value, (int, float)):
        return None if value != value else float(value)  # NaN (pandas' null) is no label
    raise LayoutError(field, f"must be a number, a boolean or null, not {value!r}")


def from_multi_objective(row: dict) -> Converted:
    """``{messages, <attribute columns>}`` (RLHFlow/ArmoRM-Multi-Objective-Data: 19 columns, null where absent) or
    ``{messages, attributes: {...}}`` (the same, nested)."""
    require(row, "messages")
    if "attributes" in row:
        if not isinstance(row["attributes"], dict):
            raise LayoutError("attributes", "must be an object of attribute ratings")
        raw = row["attributes"]
    else:
        raw = {k: v for k, v in row.items() if k not in NOT_ATTRIBUTES and not k.startswith("__")}
    attributes = {name: _rating(value, name) for name, value in raw.items()}
    return [_keep(row, {"messages": row["messages"], "attributes": attributes}, raw)], []


def from_helpsteer2_attributes(row: dict) -> Converted:
    """nvidia/HelpSteer2 rows ``{prompt, response, helpfulness, correctness, coherence, complexity, verbosity}``."""
    require(row, "prompt", "response", *HELPSTEER2_ATTRIBUTES)
    messages = helpsteer2_context(row["prompt"]) + [{"role": "assistant", "content": row["response"]}]
    attributes = {name: _rating(row[name], name) for name in HELPSTEER2_ATTRIBUTES}
    return [_keep(row, {"messages": messages, "attributes": attributes}, attributes)], []


def _keep(row: dict, out: dict, used) -> dict:
    """Scalar columns the converter did not consume (id, split, ...) travel along."""
    skip = set(used) | {"messages", "attributes", "prompt", "response", "steps", "labels", "conversations"}
    return {**{k: v for k, v in row.items() if k not in skip and not isinstance(v, (list, dict))}, **out}


def step_messages(problem: str, steps: list[str], labels: list[bool] | None, outcome: bool = False) -> list[dict]:
    """The PRM chat (user turn k = step k, the first one problem + " " + step 1) or, with ``outcome``, the ORM chat
    (the whole solution in one user turn, the last step's label)."""
    if labels is None:
        labels = [True] * len(steps)
    if outcome:
        return [{"role": "user", "content": f"{problem} " + "\n".join(steps)},
                {"role": "assistant", "content": PLUS if labels[-1] else MINUS}]
    messages = []
    for i, (step, good) in enumerate(zip(steps, labels)):
        messages.append({"role": "user", "content": f"{problem} {step}" if i == 0 else step})
        messages.append({"role": "assistant", "content": PLUS if good else MINUS})
    return messages


def _labels(values: object) -> list[bool]:
    if not isinstance(values, list) or not all(isinstance(v, bool) or v in (0, 1) for v in values):
        raise LayoutError("labels", "must be a list of 1/0 (or true/false) step labels")
    return [bool(v) for v in values]


def from_step_rows(row: dict) -> Converted:
    """Step rows ``{prompt (or problem), steps: [str], labels: [1|0]}`` (the real ``*_prm_*.jsonl`` rows, the
    synthetic suite): the PRM chat, keeping prompt, steps and labels."""
    problem_field = "prompt" if "prompt" in row else "problem"
    require(row, problem_field, "steps", "labels")
    problem, steps, labels = row[problem_field], row["steps"], _labels(row["labels"])
    if not isinstance(problem, str) or not problem.strip():
        raise LayoutError(problem_field, "must be a non-empty string")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
        raise LayoutError("steps", "must be a non-empty list of non-empty strings")
    if len(labels) != len(steps):
        raise LayoutError("labels", f"has {len(labels)} labels for {len(steps)} steps")
    out = {"messages": step_messages(problem, steps, labels), "prompt": problem, "steps": steps, "labels": labels}
    return [_keep(row, out, ())], []


def _conversation(row: dict) -> list:
    field = "conversations" if "conversations" in row else "messages"
    require(row, field)
    messages = row[field]
    if not isinstance(messages, list) or not messages:
        raise LayoutError(field, "must be a non-empty list of {role, content} messages")
    return messages


def from_prm_conversations(row: dict) -> Converted:
    """Math-Shepherd-style PRM rows ``{conversations: [user step 1 (with the question), assistant "+"/"-", user
    step 2, ...]}`` (RLHFlow/Mistral-PRM-Data), already the training chat."""
    return [_keep(row, {"messages": _conversation(row)}, ())], []


def from_orm_conversations(row: dict) -> Converted:
    """ORM rows: the same layout with one user turn (the whole solution) and one label (RLHFlow/Mistral-ORM-Data)."""
    messages = _conversation(row)
    if len(messages) != 2:
        raise LayoutError("conversations", f"an ORM row is one user turn and one label, not {len(messages)} turns")
    return [_keep(row, {"messages": messages}, ())], []


def from_bestofn(row: dict) -> Converted:
    """Best-of-N candidate sets ``{prompt, answers: [N], label: [N]}`` (RLHFlow/{Mistral,Deepseek}-GSM8K-Test,
    -MATH500-Test; ``labels`` is accepted too)."""
    label_field = "label" if "label" in row else "labels"
    require(row, "prompt", "answers", label_field)
    answers = row["answers"]
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
        raise LayoutError("answers", "must be a non-empty list of strings")
    labels = row[label_field]
    if not isinstance(labels, list) or not all(isinstance(v, bool) or v in (0, 1) for v in labels):
        raise LayoutError(label_field, "must be a list of 1/0 correctness labels")
    if len(labels) != len(answers):
        raise LayoutError(label_field, f"has {len(labels)} labels for {len(answers)} answers")
    out = {"context": as_context(row["prompt"]), "answers": answers, "labels": [int(v) for v in labels]}
    return [_keep(row, out, ("answers", "label", "labels"))], []


V2_FIELDS = ("id", "subset", "prompt", "chosen", "rejected")


def from_rewardbench2(row: dict) -> Converted:
    """allenai/reward-bench-2 rows ``{id, prompt, chosen: [..], rejected: [..], num_correct, num_incorrect,
    total_completions, models, subset}``: every completion is scored on its own."""
    require(row, *V2_FIELDS)
    for field in ("chosen", "rejected"):
        value = row[field]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise LayoutError(field, "must be a non-empty list of non-empty strings (RewardBench 2 format)")
    if not isinstance(row["prompt"], str) or not row["prompt"].strip():
        raise LayoutError("prompt", "must be a non-empty string")
    for field in ("num_correct", "num_incorrect"):
        side = "chosen" if field == "num_correct" else "rejected"
        if row.get(field) is not None and row[field] != len(row[side]):
            raise LayoutError(field, f"is {row[field]} but '{side}' holds {len(row[side])} completions")
    return [{"id": str(row["id"]), "subset": str(row["subset"]), "prompt": row["prompt"],
             "chosen": list(row["chosen"]), "rejected": list(row["rejected"])}], []
