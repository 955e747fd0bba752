"""Rows for every data set of the paper recipe, generated in the layout of the hub repository they stand in for.

The text is rmflow's synthetic suite (``rmflow.data.synth``: checkable preferences, arithmetic with labelled steps),
so the rehearsal hub builds on a fresh clone. What each repository mirrors - split names and the files that carry
them, data_dir folders, column names and types, quirks - is each repository's recorded layout (rmflow.hub_facts,
with the card it comes from), copied into the manifest; a test compares every stand-in with those facts.
"""

from __future__ import annotations

import gzip
import io
import json
import random
from dataclasses import dataclass, field

from rmflow.data import synth

# data-set id -> what the stand-in simplifies; what it mirrors (splits, files, columns, quirks) is each
# repository's recorded layout in rmflow/hub_facts, with its source
SIMPLIFIED = {
    'hendrydong/preference_700K': '48 rows instead of 700K',
    'RLHFlow/pair-preference-dataset-mix1': '48 rows',
    'RLHFlow/preference_data_v2_80K_wsafety': '48 rows',
    'RLHFlow/pair_preference_model_dataset': '48 rows',
    'RLHFlow/UltraFeedback-preference-standard': '48 rows',
    'RLHFlow/ArmoRM-Multi-Objective-Data-v0.1': '48 rows, 4 sources',
    'RLHFlow/pair_data_v2_80K_wsafety': '48 rows',
    'nvidia/HelpSteer2': '48 attribute rows, 40 preference rows; no disagreements/ folder',
    'RLHFlow/Mistral-PRM-Data': 'arithmetic problems, 32 trajectories',
    'RLHFlow/Mistral-ORM-Data': 'the same 32 trajectories',
    'RLHFlow/Mistral-GSM8K-Test': '6 problems x 8 answers',
    'RLHFlow/Mistral-MATH500-Test': '6 problems x 8 answers',
    'RLHFlow/Deepseek-GSM8K-Test': '6 problems x 8',
    'RLHFlow/Deepseek-MATH500-Test': '6 problems x 8 answers',
    'allenai/reward-bench': '2 rows per subset',
    'allenai/reward-bench-2': '3 prompts per subset, 2 Ties pairs',
    'THU-KEG/RM-Bench': '2 rows per domain',
    'ScalerLab/JudgeBench': '2 pairs per source group and split',
    'Qwen/ProcessBench': '4 solutions per split, 2 of them with a wrong step',
    'lmarena-ai/PPE-Human-Preference-V1': '8 battles, 2 of them human ties',
    **{f'lmarena-ai/PPE-{d}-Best-of-K': '3 prompts of 4 answers (not 32), 2 conflict pairs each'
       for d in ('MMLU-Pro', 'MATH', 'GPQA', 'MBPP-Plus', 'IFEval')},
}


def layout(repo_id: str) -> str:
    from rmflow import hub_facts

    return hub_facts.value(repo_id, "layout")


V1_SUBSETS = ["alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med",
              "mt-bench-hard", "llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst",
              "llmbar-adver-GPTOut", "llmbar-adver-manual", "refusals-dangerous", "refusals-offensive",
              "xstest-should-refuse", "xstest-should-respond", "donotanswer", "math-prm", "hep-cpp", "hep-go",
              "hep-java", "hep-js", "hep-python", "hep-rust"]
V2_SUBSETS = ["Factuality", "Precise IF", "Math", "Safety", "Focus"]
ARMO_SOURCES = {  # the attribute columns each source of the multi-objective mixture labels
    "helpsteer": ["helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence", "helpsteer-complexity",
                  "helpsteer-verbosity"],
    "ultrafeedback": ["ultrafeedback-overall_score", "ultrafeedback-instruction_following",
                      "ultrafeedback-truthfulness", "ultrafeedback-honesty", "ultrafeedback-helpfulness"],
    "safety+judges": ["beavertails-is_safe", "prometheus-score", "argilla-overall_quality", "argilla-judge_lm"],
    "code": ["code-complexity", "code-style", "code-explanation", "code-instruction-following",
             "code-readability"],
}


@dataclass
class DataRepo:
    repo_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # file -> row count, for the manifest


def _parquet(rows: list[dict]) -> bytes:
    import polars as pl

    buf = io.BytesIO()
    pl.DataFrame(rows, infer_schema_length=None).write_parquet(buf)
    return buf.getvalue()


def _jsonl_gz(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as fh:  # mtime 0: the same bytes on every build
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
    return buf.getvalue()


def encode(name: str, rows: list[dict]) -> bytes:
    """Rows in the file format its name says: .jsonl.gz, .jsonl, .json (a JSON list) or parquet."""
    if name.endswith(".jsonl.gz"):
        return _jsonl_gz(rows)
    if name.endswith(".jsonl"):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    if name.endswith(".json"):
        return json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8")
    return _parquet(rows)


def _repo(repo_id: str, files: dict[str, list[dict]], card: str = "") -> DataRepo:
    """``card``: YAML lines the real card's front matter holds and a loader reads (ProcessBench's split configs)."""
    repo = DataRepo(repo_id)
    for name, rows in files.items():
        repo.files[name] = encode(name, rows)
        repo.rows[name] = len(rows)
    facts, simplified = layout(repo_id), SIMPLIFIED[repo_id]
    repo.files["README.md"] = (f"---\npretty_name: {repo_id} (rmflow rehearsal stand-in)\n{card}---\n# {repo_id}\n\n"
                               f"Layout: {facts}.\n\nSimplified: {simplified}.\n").encode("utf-8")
    return repo


def _pairs(seed: int) -> list[dict]:
    return [{"chosen": r["chosen"], "rejected": r["rejected"]} for r in synth.generate(seed, 4, 0)["train"]]


def _pm(pairs: list[dict], seed: int, off_template: bool) -> list[dict]:
    from rmflow.methods.pairwise.pm import pm_row

    rng = random.Random(seed)
    rows = []
    for p in pairs:
        context, good, bad = p["chosen"][:-1], p["chosen"][-1]["content"], p["rejected"][-1]["content"]
        rows.append(pm_row(context, good, bad, "A") if rng.random() < 0.5 else pm_row(context, bad, good, "B"))
    if off_template:  # a row whose separators lost their spacing, as exported mixtures have
        rows[-1]["messages"][0]["content"] = rows[-1]["messages"][0]["content"].replace(" [RESPONSE", "[RESPONSE")
    return [{"messages": r["messages"]} for r in rows]


def _mistral_answer(lines: list[str]) -> str:
    steps = [f"Step {k}: {line}" for k, line in enumerate(lines[:-1], start=1)]
    return "".join(f"{s} ки\n" for s in steps) + f"The answer is: {lines[-1].split()[-1]} ки"


def _deepseek_answer(lines: list[str]) -> str:
    return "\n\n".join(lines[:-1] + [f"The answer is: {lines[-1].split()[-1]}"])


def _bestofn(seed: int, render) -> list[dict]:
    rows = []
    for s in synth.best_of_n_sets(seed, 6, 8):
        answers = [render([ln for ln in a.split("\n") if ln.strip()]) for a in s["answers"]]
        rows.append({"prompt": s["prompt"], "answers": answers, "label": s["labels"]})
    return rows


def _steps(seed: int) -> tuple[list[dict], list[dict]]:
    from rmflow.data.samples import step_conversations

    rows = [{"id": i, "prompt": r["problem"], "steps": r["steps"], "labels": r["labels"]}
            for i, r in enumerate(synth.generate(seed, 16, 0)["steps"][:32])]
    prm, orm = step_conversations(rows)
    return [{"conversations": r["conversations"]} for r in prm], [{"conversations": r["conversations"]} for r in orm]


def _armo(seed: int) -> list[dict]:
    rng = random.Random(seed)
    columns = [c for cols in ARMO_SOURCES.values() for c in cols]
    rows = []
    for i, r in enumerate(synth.generate(seed, 2, 0)["attributes"][:48]):
        labelled = ARMO_SOURCES[list(ARMO_SOURCES)[i % len(ARMO_SOURCES)]]
        base = r["helpfulness"] / 4
        rows.append({"messages": r["messages"],
                     **{c: (round(min(1.0, max(0.0, base + rng.uniform(-0.2, 0.2))), 3) if c in labelled else None)
                        for c in columns}})
    return rows


def _helpsteer2(seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    attributes = []
    for i, r in enumerate(synth.generate(seed, 2, 0)["attributes"][:48]):
        prompt = r["messages"][0]["content"]
        if i % 6 == 5:  # HelpSteer2's multi-turn prompts: earlier turns joined with <extra_id_1> role markers
            prompt = f"Hello.\n<extra_id_1>Assistant\nHi, how can I help?\n<extra_id_1>User\n{prompt}"
        attributes.append({"prompt": prompt, "response": r["messages"][-1]["content"],
                           **{a: int(r[a]) for a in ("helpfulness", "correctness", "coherence", "complexity",
                                                     "verbosity")}})
    preference = []
    for i, p in enumerate(_pairs(seed + 1)[:40]):
        good, bad = p["chosen"][-1]["content"], p["rejected"][-1]["content"]
        first = rng.random() < 0.5
        strength = rng.choice([1, 2, 3])
        preference.append({"split": "val" if i % 5 == 4 else "train", "prompt": p["chosen"][0]["content"],
                           "response_1": good if first else bad, "response_2": bad if first else good,
                           "preference_strength": -strength if first else strength,
                           "preference_statement": f"@Response {1 if first else 2} is better.",
                           "preference_elaboration": "It follows the instruction."})
    return attributes, preference


def _rewardbench(seed: int) -> dict[str, list[dict]]:
    items = synth.generate(seed, 0, 4)["test"]
    rows = [{"prompt": it["prompt"], "chosen": it["chosen"], "chosen_model": "rehearsal-good",
             "rejected": it["rejected"], "rejected_model": "rehearsal-bad", "subset": subset, "id": k}
            for k, (subset, it) in enumerate((s, items[(2 * i + j) % len(items)])
                                             for i, s in enumerate(V1_SUBSETS) for j in range(2))]
    return {"data/filtered-00000-of-00001.parquet": rows, "data/raw-00000-of-00001.parquet": rows}


def _rewardbench2(seed: int) -> list[dict]:
    items = synth.generate(seed, 0, 3)["test"]
    rows = []
    for i, subset in enumerate(V2_SUBSETS):
        for j in range(3):
            a, b, c = (items[(9 * i + 3 * j + k) % len(items)] for k in range(3))
            rows.append({"id": f"{subset.lower().replace(' ', '-')}-{j}", "prompt": a["prompt"],
                         "chosen": [a["chosen"]], "rejected": [a["rejected"], b["rejected"], c["rejected"]],
                         "num_correct": 1, "num_incorrect": 3, "total_completions": 4,
                         "models": ["rehearsal-good"] + ["rehearsal-bad"] * 3, "subset": subset})
    for n, s in enumerate([s for s in synth.best_of_n_sets(seed, 12, 8) if sum(s["labels"]) >= 2][:2]):
        right = [a for a, y in zip(s["answers"], s["labels"]) if y]
        wrong = [a for a, y in zip(s["answers"], s["labels"]) if not y][:3]
        for kind, good in (("ref", right[:1]), ("tied", right)):
            rows.append({"id": f"{kind}:{n}", "prompt": s["prompt"], "chosen": good, "rejected": wrong,
                         "num_correct": len(good), "num_incorrect": len(wrong),
                         "total_completions": len(good) + len(wrong),
                         "models": ["rehearsal-good"] * len(good) + ["rehearsal-bad"] * len(wrong), "subset": "Ties"})
    return rows


def build_all(seed: int = 0) -> list[DataRepo]:
    """Every data-set stand-in (the ids of SIMPLIFIED), deterministic from ``seed``."""
    shard = "data/train-00000-of-00001.parquet"
    malformed = {"chosen": [{"role": "user", "content": "Name a colour."}],
                 "rejected": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "No."}]}
    prm, orm = _steps(seed + 7)
    attributes, preference = _helpsteer2(seed + 8)
    repos = [
        _repo("hendrydong/preference_700K", {shard: _pairs(seed + 1) + [malformed]}),
        _repo("RLHFlow/pair-preference-dataset-mix1", {shard: _pm(_pairs(seed + 2), seed, True)}),
        _repo("RLHFlow/preference_data_v2_80K_wsafety", {shard: _pm(_pairs(seed + 3), seed, True)}),
        _repo("RLHFlow/pair_preference_model_dataset", {shard: _pm(_pairs(seed + 4), seed, True)}),
        _repo("RLHFlow/UltraFeedback-preference-standard", {shard: _pairs(seed + 5)}),
        _repo("RLHFlow/pair_data_v2_80K_wsafety", {shard: _pairs(seed + 6)}),
        _repo("RLHFlow/ArmoRM-Multi-Objective-Data-v0.1", {shard: _armo(seed + 9)}),
        _repo("nvidia/HelpSteer2", {"train.jsonl.gz": attributes[:40], "validation.jsonl.gz": attributes[40:],
                                    "preference/preference.jsonl.gz": preference}),
        _repo("RLHFlow/Mistral-PRM-Data", {shard: prm}),
        _repo("RLHFlow/Mistral-ORM-Data", {shard: orm}),
        _repo("RLHFlow/Mistral-GSM8K-Test", {shard: _bestofn(seed + 10, _mistral_answer)}),
        _repo("RLHFlow/Mistral-MATH500-Test", {shard: _bestofn(seed + 11, _mistral_answer)}),
        _repo("RLHFlow/Deepseek-GSM8K-Test",
              {"data/test-00000-of-00001.parquet": _bestofn(seed + 12, _deepseek_answer)}),
        _repo("RLHFlow/Deepseek-MATH500-Test",
              {"data/test-00000-of-00001.parquet": _bestofn(seed + 13, _deepseek_answer)}),
        _repo("allenai/reward-bench", _rewardbench(seed + 14)),
        _repo("allenai/reward-bench-2", {"data/test-00000-of-00001.parquet": _rewardbench2(seed + 15)}),
    ]
    from rmflow.rehearsal import benchmark_sets

    return repos + benchmark_sets.repos(seed + 16, _repo)


def corpus(repos: list[DataRepo]) -> list[str]:
    """Every string in the stand-in rows (the tokenizers' training text)."""
    import polars as pl

    texts: list[str] = []

    def walk(value):
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for repo in repos:
        for name, data in repo.files.items():
            if name.endswith(".parquet"):
                walk(pl.read_parquet(io.BytesIO(data)).to_dicts())
            elif name.endswith(".jsonl.gz"):
                walk([json.loads(line) for line in gzip.decompress(data).decode("utf-8").splitlines()])
    return texts
