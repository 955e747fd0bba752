"""Loading, scoring and reporting for every benchmark of this package, one path for all of them: items from the
raw rows, a model's credits per item, and the numbers ``scores.json`` and the leaderboard hold."""

from __future__ import annotations

import collections
import logging

from rmflow.data.convert import LayoutError
from rmflow.errors import RmflowError
from rmflow.evaluate import benchmarks
from rmflow.evaluate.benchmarks import Skip

log = logging.getLogger(__name__)


def convert_rows(name: str, raws: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Items from raw rows, and the rows the rule leaves out, counted by reason; a bad row is an error naming its
    file, row and field."""
    module = benchmarks.get(name)
    items, skipped = [], collections.Counter()
    for raw in raws:
        try:
            converted = module.convert(raw)
        except Skip as reason:
            skipped[str(reason)] += 1
            continue
        except LayoutError as exc:
            raise RmflowError(str(exc), file=raw.get("__file__"), row=raw.get("__row__"), field=exc.field) from exc
        items.extend(converted if isinstance(converted, list) else [converted])
    for reason, n in sorted(skipped.items()):
        log.info("%s: %d row(s) left out by the rule: %s", name, n, reason)
    return items, dict(skipped)


def load_items(name: str, sources: list[str], splits: list[str], revisions: list[str | None]) -> tuple[list, dict]:
    """Every (source, split) part's rows, tagged with where they came from, converted together; a local folder is
    read with its subfolders."""
    from rmflow.data.loaders import read_rows

    raws = []
    for source, revision in zip(sources, revisions):
        for split in splits:
            for raw in read_rows(source, split=split, revision=revision, recursive=True):
                raw.setdefault("__file__", source)
                raws.append({**raw, "__source__": source, "__split__": split})
    return convert_rows(name, raws)


def _chat(context: list[dict], answer: str) -> list[dict]:
    return [*context, {"role": "assistant", "content": answer}]


def score_items(scorer, name: str, items: list[dict]) -> tuple[list[dict], dict]:
    """Each item's credit row (``correct``, the rule's detail and the model's raw output), from the scorer the
    model has: per-step probabilities (ProcessBench), a reward per candidate (scalar models), or both-order
    verdicts per comparison (pairwise models and judges); and the scorer's own pairwise output ({} otherwise),
    which its ``summary`` reads."""
    scored: dict = {}
    module = benchmarks.get(name)
    if getattr(module, "STEP_LEVEL", False):
        if not hasattr(scorer, "chat_probabilities"):
            raise RmflowError(f"{name} needs a reward for every step: a process reward model (prm), not a "
                              f"{getattr(scorer, 'kind', 'pairwise')} model", field="method")
        outputs = [{"step_probs": p} for p in scorer.chat_probabilities([module.step_chat(i) for i in items])]
    elif hasattr(scorer, "score_conversations"):
        flat = [_chat(item["context"], answer) for item in items for answer in item["candidates"]]
        scores = iter(scorer.score_conversations(flat))
        outputs = [{"rewards": [next(scores) for _ in item["candidates"]]} for item in items]
    else:
        pairs = [{"chosen": _chat(item["context"], item["candidates"][i]),
                  "rejected": _chat(item["context"], item["candidates"][j])}
                 for item in items for i, j in item["comparisons"]]
        scored = scorer.score_pairs(pairs)
        orders = iter(zip(scored.get("p_order1", scored["p_chosen"]), scored.get("p_order2", scored["p_chosen"])))
        outputs = [{"orders": [list(next(orders)) for _ in item["comparisons"]]} for item in items]
    return [credit_row(module, item, output) for item, output in zip(items, outputs)], scored


def credit_row(module, item: dict, output: dict) -> dict:
    """One item's credit from a model's raw output (what ``score_items`` measured or a per-item file holds)."""
    if "step_probs" in output:
        detail = module.credit(item, output["step_probs"])
    elif "rewards" in output:
        detail = module.credit(item, scores=output["rewards"])
    else:
        detail = module.credit(item, orders=output["orders"])
    return {**detail, **output}


def per_subset(items: list[dict], rows: list[dict]) -> dict[str, tuple[float, int]]:
    totals: dict[str, list[float]] = {}
    for item, row in zip(items, rows):
        totals.setdefault(item["subset"], []).append(row["correct"])
    return {s: (sum(v) / len(v), len(v)) for s, v in sorted(totals.items())}


def report(name: str, items: list[dict], rows: list[dict]) -> dict:
    """The accuracy part of ``scores.json``: subsets, the rule's columns (``sections``), Score, details."""
    module = benchmarks.get(name)
    accuracies = per_subset(items, rows)
    numbers = module.score_fn(accuracies)
    sections = {k: v for k, v in numbers.items() if k != "Score"}
    detail = module.details(items, rows) if hasattr(module, "details") else None
    if detail is not None and hasattr(module, "detail_columns"):
        sections.update(module.detail_columns(detail))
    return {"subsets": {s: {"accuracy": acc, "n": n} for s, (acc, n) in accuracies.items()}, "partial_subsets": {},
            "sections": sections, "prior_sets": None, "score": numbers["Score"], "section_map": name,
            "formula": (module.__doc__ or "").strip().split("\n\n")[0], "rule_source": module.SOURCE,
            "tie_rule": module.TIE_RULE, "details": detail, "unscored_subsets": {}}


# what rescoring an examples.parquet needs of each item besides the model's output (never the texts)
ITEM_KEYS = ("comparisons", "label")


def examples_columns(items: list[dict], rows: list[dict]) -> dict[str, list]:
    """Per-item columns of examples.parquet: what the bootstrap resamples (id, subset, correct) and the detail."""
    keys = [k for k in rows[0] if k != "correct"] if rows else []
    kept = {k: [i.get(k) for i in items] for k in ITEM_KEYS if items and k in items[0]}
    return {"id": [i["id"] for i in items], "subset": [i["subset"] for i in items], **kept,
            **{k: [r.get(k) for r in rows] for k in keys}, "correct": [r["correct"] for r in rows]}


def items_from_examples(frame) -> tuple[list[dict], list[dict]]:
    """(items, raw outputs) back from an examples.parquet ``examples_columns`` wrote."""
    outputs = [k for k in ("rewards", "orders", "step_probs") if k in frame.columns]
    if len(outputs) != 1 or not {"id", "subset", "comparisons"} <= set(frame.columns):
        raise RmflowError("is not an examples.parquet of a benchmark rmflow scored (columns id, subset, "
                          f"comparisons and one of rewards / orders / step_probs; seen: {', '.join(frame.columns)})")
    items, raw = [], []
    for row in frame.iter_rows(named=True):
        item = {k: row[k] for k in ("id", "subset", *ITEM_KEYS) if k in row}
        item["comparisons"] = [list(c) for c in item["comparisons"]]
        items.append(item)
        raw.append({outputs[0]: row[outputs[0]]})
    return items, raw
