"""Every data layout rmflow reads, by its ``format:`` name, and what kind of canonical rows each becomes.

A format = a converter (raw row -> canonical rows + counted events) and a kind. A kind = the canonical row shape, a
validator and the parquet schema ``prepare-data`` writes. Methods read kinds, never formats: BT reads ``pairs``, the
PRM ``steps``, ArmoRM's stage 1 ``attributes``, best-of-N ``candidates``; the plan checks at plan time that each
method gets the kind it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rmflow.data import convert, layouts
from rmflow.data.schema import Problem, check_messages, check_training_pair
from rmflow.errors import RmflowError


@dataclass(frozen=True)
class Format:
    kind: str
    converter: Callable[[dict], tuple[list[dict], list[str]]]
    layout: str  # one line for error messages and `rmflow formats`


FORMATS: dict[str, Format] = {
    "standard": Format("pairs", convert.from_standard, "{chosen: [messages], rejected: [messages]}"),
    "hh": Format("pairs", convert.from_hh, "Anthropic HH transcripts {chosen: str, rejected: str}"),
    "rewardbench": Format("pairs", convert.from_rewardbench, "{prompt, chosen: str, rejected: str}"),
    "ratings_best_vs_each": Format("pairs", lambda r: convert.ratings_to_pairs(r, "best_vs_each"),
                                   "{prompt, responses: [..], scores: [..]}"),
    "ratings_best_vs_worst": Format("pairs", lambda r: convert.ratings_to_pairs(r, "best_vs_worst"),
                                    "{prompt, responses: [..], scores: [..]}"),
    "helpsteer2_preference": Format("pairs", convert.from_helpsteer2_preference,
                                    "{prompt, response_1, response_2, preference_strength, split}"),
    "pair_pm_messages": Format("pairs", convert.from_pair_pm_messages,
                               "{messages: [user '[CONTEXT] … [RESPONSE A] … [RESPONSE B] … ', assistant A|B]}"),
    "multi_objective": Format("attributes", layouts.from_multi_objective,
                              "{messages, <attribute columns, null where absent>} or {messages, attributes: {..}}"),
    "helpsteer2_attributes": Format("attributes", layouts.from_helpsteer2_attributes,
                                    "{prompt, response, helpfulness, correctness, coherence, complexity, verbosity}"),
    "step_rows": Format("steps", layouts.from_step_rows, "{prompt (or problem), steps: [..], labels: [1|0]}"),
    "prm_conversations": Format("steps", layouts.from_prm_conversations,
                                "{conversations: [user step, assistant +/-, ...]} (Math-Shepherd)"),
    "orm_conversations": Format("steps", layouts.from_orm_conversations,
                                "{conversations: [user solution, assistant +/-]}"),
    "bestofn": Format("candidates", layouts.from_bestofn, "{prompt, answers: [N], label: [N]}"),
    "rewardbench2": Format("rewardbench2", layouts.from_rewardbench2,
                           "{id, subset, prompt, chosen: [..], rejected: [..], num_correct, ...}"),
}


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise RmflowError(f"unknown data format '{name}' (known: {', '.join(FORMATS)})", field="format")
    return FORMATS[name]


def kind_of(fmt: str) -> str:
    return get_format(fmt).kind


# ---- validators: the first problem of a canonical row, or None ---------------------------------------------------
def _check_attributes(row: dict) -> Problem | None:
    problem = check_messages(row["messages"], "messages")
    if problem:
        return problem
    if not any(v is not None for v in row["attributes"].values()):
        return Problem("attributes", "no_attribute_label", "holds no attribute rating (every column is null)")
    return None


def _check_steps(row: dict) -> Problem | None:
    messages = row["messages"]
    problem = check_messages(messages, "messages")
    if problem:
        return problem
    if messages[0]["role"] == "system":
        return Problem("messages[0].role", "role_order", "a step-labelled chat opens with a user turn")
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and message["content"].strip() not in (layouts.PLUS, layouts.MINUS):
            return Problem(f"messages[{i}].content", "not_a_step_label",
                           f"is {message['content'][:30]!r}; every assistant turn must be '+' or '-'")
    return None


def _check_candidates(row: dict) -> Problem | None:
    problem = check_messages(row["context"] + [{"role": "assistant", "content": "x"}], "prompt")
    if problem:
        return problem
    if not any(a.strip() for a in row["answers"]):
        return Problem("answers", "empty_content", "every answer is empty")
    return None


VALIDATORS: dict[str, Callable[[dict], Problem | None]] = {
    "pairs": check_training_pair,
    "attributes": _check_attributes,
    "steps": _check_steps,
    "candidates": _check_candidates,
    "rewardbench2": lambda row: None,  # the converter checks everything a v2 row needs
}

def _schemas() -> dict[str, dict]:
    """The list/struct columns of each kind (scalar extras such as id or split are added as they come)."""
    import polars as pl

    messages = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
    return {
        "pairs": {"chosen": messages, "rejected": messages},
        "attributes": {"messages": messages},  # + one Float64 struct field per attribute (union over rows)
        "steps": {"messages": messages},
        "candidates": {"context": messages, "answers": pl.List(pl.String), "labels": pl.List(pl.Int64)},
        "rewardbench2": {"id": pl.String, "subset": pl.String, "prompt": pl.String, "chosen": pl.List(pl.String),
                         "rejected": pl.List(pl.String)},
    }


def write_rows(rows: list[dict], kind: str, out) -> None:
    """The canonical rows of ``kind`` as parquet: typed core columns, then every scalar extra column."""
    import polars as pl

    from rmflow.io import atomic_path

    schema = dict(_schemas()[kind])
    optional = {"prompt": pl.String, "steps": pl.List(pl.String), "labels": pl.List(pl.Boolean)}
    if kind == "steps":  # step_rows keep prompt/steps/labels; conversations do not have them
        schema.update({k: v for k, v in optional.items() if all(k in r for r in rows)})
    columns = {name: [r[name] for r in rows] for name in schema}
    if kind == "attributes":
        names = sorted({k for r in rows for k in r["attributes"]})
        schema["attributes"] = pl.Struct({n: pl.Float64 for n in names})
        columns["attributes"] = [{n: r["attributes"].get(n) for n in names} for r in rows]
    frame = pl.DataFrame(columns, schema=schema)
    extras = sorted({k for r in rows for k in r} - set(schema) - {"__row__", "__file__"})
    for key in extras:
        if all(isinstance(r.get(key), (str, int, float, bool, type(None))) for r in rows):
            frame = frame.with_columns(pl.Series(key, [r.get(key) for r in rows]))
    with atomic_path(out) as tmp:
        frame.write_parquet(tmp)


def read_prepared(path) -> list[dict]:
    """Canonical rows from a prepared parquet file (attribute structs come back with every name, null if absent)."""
    import polars as pl

    return pl.read_parquet(path).to_dicts()
