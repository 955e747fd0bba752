"""``rmflow make-samples``: small local stand-ins, built from a folder of real rows, for every hub data set
of the paper recipe, each in the layout of the set it replaces (methods-detail.md §10).

``tests/configs/paper-smoke.yaml`` points the recipe's data sets here, so the paper DAG runs on a laptop with the same
formats, converters and methods. The text is real (Auto-J and GSM8K preference pairs, ProcessBench and BIG-Bench
Mistake step labels, ProcessBench attribute rows, RewardBench rows rebuilt from their sources); only the layout is
reshaped. Where a layout needs a label the source does not have, the file's entry in ``SAMPLES`` says how it is
derived. Train sets come from the ``*_train`` files, evaluation sets from ``*_test`` and ``rewardbench-partial``.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

# file -> (layout of the hub set it stands in for, where its rows come from)
SAMPLES = {
    "preference_700k.jsonl": ("standard pairs (hendrydong/preference_700K)", "Auto-J + GSM8K train pairs"),
    "pair_pm_mix1.jsonl": ("pair-PM SFT rows", "Auto-J + GSM8K train pairs rendered as [CONTEXT]/[RESPONSE A]/[B]"),
    "pair_pm_v2_80k.jsonl": ("pair-PM SFT rows", "as above, other pairs"),
    "pair_pm_llama3.jsonl": ("pair-PM SFT rows", "as above, other pairs"),
    "ultrafeedback_standard.jsonl": ("standard pairs (SSRM's unlabeled pool)", "GSM8K + Auto-J train pairs"),
    "pair_data_v2_80k.jsonl": ("standard pairs (ArmoRM stage 2)", "Auto-J + GSM8K train pairs"),
    "armo_multi_objective.jsonl": ("messages + attribute columns, null where absent",
                                   "ProcessBench attribute rows (answer_correct, process_correct, "
                                   "correct_step_fraction) + verbosity = the answer's length in words, bucketed "
                                   "into [0, 1] (the hub set's verbosity is a human rating)"),
    "helpsteer2_attributes.jsonl": ("HelpSteer2 rows {prompt, response, 5 attributes 0-4}",
                                    "ProcessBench attribute rows: helpfulness = 4 x answer_correct, correctness = "
                                    "round(4 x correct_step_fraction), coherence = 4 x process_correct, complexity = "
                                    "the step count (capped at 4), verbosity = length quintile (0-4)"),
    "helpsteer2_preference.jsonl": ("HelpSteer2-Preference rows {prompt, response_1, response_2, "
                                    "preference_strength, split}",
                                    "Auto-J + GSM8K train pairs in random order, strength -2 / +2 towards the "
                                    "chosen one, every fifth row split 'val'"),
    "mistral_prm_data.jsonl": ("Math-Shepherd PRM conversations (user step k, assistant +/-)",
                               "ProcessBench + BIG-Bench Mistake train step rows of at most max_step_chars "
                               "characters, steps prefixed 'Step k: '"),
    "mistral_orm_data.jsonl": ("ORM conversations (one user turn, one +/-)", "the same rows, steps joined"),
    "mistral_gsm8k_test.jsonl": ("best-of-N sets {prompt, answers, label}", "GSM8K test solutions per problem"),
    "mistral_math500_test.jsonl": ("best-of-N sets", "GSM8K test solutions, other problems"),
    "deepseek_gsm8k_test.jsonl": ("best-of-N sets", "GSM8K test solutions, other problems"),
    "deepseek_math500_test.jsonl": ("best-of-N sets", "GSM8K test solutions, other problems"),
    "gsm8k_bestofn.jsonl": ("best-of-N sets", "GSM8K test solutions: the four sets above together"),
    "rewardbench": ("RewardBench rows {id, subset, prompt, chosen, rejected}, one file per subset",
                    "rewardbench-partial: the first rows of each of its 12 subsets"),
    "rewardbench2.jsonl": ("RewardBench 2 rows {id, subset, prompt, chosen[], rejected[], num_correct, ...}",
                           "GSM8K test problems: Math = 1 correct vs 3 wrong solutions; Ties = problems with 2 "
                           "correct solutions (ref:/tied: pairs)"),
}
DEFAULTS = {"pairs": 32, "attribute_rows": 48, "step_rows": 32, "bestofn_problems": 8, "candidates": 4,
            "rewardbench_per_subset": 3, "rewardbench2_problems": 8, "max_step_chars": 1500, "seed": 0}


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        raise RmflowError("real-row file is missing (make-samples reads the folder given as --shared, the "
                          "config's samples.shared)", file=str(path))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    from rmflow.io import write_jsonl

    write_jsonl(path, rows)


def _standard(row: dict, i: int) -> dict:
    return {"id": row.get("id", str(i)), "chosen": row["chosen"], "rejected": row["rejected"]}


def _pm_rows(pairs: list[dict], rng: random.Random) -> list[dict]:
    from rmflow.methods.pairwise.pm import pm_row

    out = []
    for pair in pairs:
        context, good, bad = pair["chosen"][:-1], pair["chosen"][-1]["content"], pair["rejected"][-1]["content"]
        out.append(pm_row(context, good, bad, "A") if rng.random() < 0.5 else pm_row(context, bad, good, "B"))
    return out


def _words_bucket(text: str, edges: list[int]) -> int:
    n = len(text.split())
    return sum(n > e for e in edges)


def _attribute_rows(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """ProcessBench attribute rows as the multi-objective and the HelpSteer2 layouts."""
    lengths = sorted(len(r["messages"][-1]["content"].split()) for r in rows)
    quintiles = [lengths[int(len(lengths) * q / 5)] for q in range(1, 5)]
    multi, helpsteer = [], []
    for r in rows:
        a, answer = r["attributes"], r["messages"][-1]["content"]
        bucket = _words_bucket(answer, quintiles)
        multi.append({"id": r["id"], "messages": r["messages"], "answer_correct": a["answer_correct"],
                      "process_correct": a["process_correct"], "correct_step_fraction": a["correct_step_fraction"],
                      "verbosity": bucket / 4})
        steps = [line for line in answer.split("\n\n") if line.strip()]
        helpsteer.append({"prompt": r["messages"][0]["content"], "response": answer,
                          "helpfulness": 4 * int(a["answer_correct"]),
                          "correctness": round(4 * a["correct_step_fraction"]),
                          "coherence": 4 * int(a["process_correct"]), "complexity": min(4, len(steps)),
                          "verbosity": bucket})
    return multi, helpsteer


def step_conversations(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Step rows as Math-Shepherd PRM conversations and as ORM conversations ("Step k: " marks every step, as in
    the hub sets, so the scalar ORM can find where the solution starts)."""
    prm, orm = [], []
    for r in rows:
        steps = [f"Step {k}: {s}" for k, s in enumerate(r["steps"], start=1)]
        labels = ["+" if v else "-" for v in r["labels"]]
        turns = []
        for k, (step, label) in enumerate(zip(steps, labels)):
            turns += [{"role": "user", "content": f"{r['prompt']} {step}" if k == 0 else step},
                      {"role": "assistant", "content": label}]
        prm.append({"id": r["id"], "conversations": turns})
        orm.append({"id": r["id"], "conversations": [
            {"role": "user", "content": f"{r['prompt']} " + "\n".join(steps)},
            {"role": "assistant", "content": labels[-1]}]})
    return prm, orm


def _problems(pairs: list[dict]) -> list[dict]:
    """GSM8K test pairs grouped by problem: the prompt, its correct and its wrong solutions (first seen order)."""
    by = defaultdict(lambda: {"good": [], "bad": []})
    order = []
    for r in pairs:
        key = r["chosen"][0]["content"]
        if key not in by:
            order.append(key)
        for side, bucket in (("chosen", "good"), ("rejected", "bad")):
            text = r[side][-1]["content"]
            if text not in by[key][bucket]:
                by[key][bucket].append(text)
    return [{"prompt": k, **by[k]} for k in order]


def _bestofn(problems: list[dict], n: int, rng: random.Random) -> list[dict]:
    out = []
    for p in problems:
        answers = [(a, 1) for a in p["good"][:1]] + [(a, 0) for a in p["bad"][:n - 1]]
        rng.shuffle(answers)
        out.append({"prompt": p["prompt"], "answers": [a for a, _ in answers], "label": [y for _, y in answers]})
    return out


def _rewardbench2(problems: list[dict], count: int) -> list[dict]:
    math = [p for p in problems if len(p["good"]) >= 1 and len(p["bad"]) >= 3][:count]
    tied = [p for p in problems if len(p["good"]) >= 2 and len(p["bad"]) >= 1][:max(2, count // 2)]
    rows = [{"id": f"math-{i}", "subset": "Math", "prompt": p["prompt"], "chosen": p["good"][:1],
             "rejected": p["bad"][:3], "num_correct": 1, "num_incorrect": 3, "total_completions": 4,
             "models": ["gsm8k-reference-or-sample"] * 4} for i, p in enumerate(math)]
    for i, p in enumerate(tied):
        for kind, good in (("ref", p["good"][:1]), ("tied", p["good"])):
            rows.append({"id": f"{kind}:{i}", "subset": "Ties", "prompt": p["prompt"], "chosen": good,
                         "rejected": p["bad"], "num_correct": len(good), "num_incorrect": len(p["bad"]),
                         "total_completions": len(good) + len(p["bad"]),
                         "models": ["gsm8k-reference-or-sample"] * (len(good) + len(p["bad"]))})
    return rows


def build(shared: str | Path, sizes: dict) -> dict[str, list[dict]]:
    """Every sample file's rows (``rewardbench/<subset>.jsonl`` for the v1 folder)."""
    if not str(shared).strip():
        raise RmflowError("no folder of real rows given (set samples.shared in the config, or --shared)",
                          field="samples.shared")
    shared, cfg = Path(shared), {**DEFAULTS, **sizes}
    unknown = sorted(set(sizes) - set(DEFAULTS))
    if unknown:
        raise RmflowError(f"unknown sample sizes {unknown} (known: {', '.join(DEFAULTS)})", field="samples")
    rng = random.Random(cfg["seed"])
    pairs = [_standard(r, i) for i, r in enumerate(_read(shared / "autoj_pairwise_train.jsonl")
                                                  + _read(shared / "gsm8k_pairs_train.jsonl"))]
    rng.shuffle(pairs)
    n = cfg["pairs"]
    chunk = {name: pairs[k * n:(k + 1) * n] for k, name in enumerate(
        ["preference_700k", "pair_pm_mix1", "pair_pm_v2_80k", "pair_pm_llama3", "ultrafeedback_standard",
         "pair_data_v2_80k"])}
    if len(pairs) < 7 * n:
        raise RmflowError(f"{len(pairs)} train pairs are too few for 7 disjoint samples of {n}", field="samples.pairs")
    out = {f"{name}.jsonl": rows for name, rows in chunk.items() if not name.startswith("pair_pm")}
    out.update({f"{name}.jsonl": _pm_rows(rows, rng) for name, rows in chunk.items() if name.startswith("pair_pm")})
    preference = []
    for i, r in enumerate(pairs[6 * n:7 * n]):
        good, bad = r["chosen"][-1]["content"], r["rejected"][-1]["content"]
        first_good = rng.random() < 0.5
        preference.append({"prompt": r["chosen"][0]["content"], "response_1": good if first_good else bad,
                           "response_2": bad if first_good else good, "preference_strength": -2 if first_good else 2,
                           "split": "val" if i % 5 == 4 else "train"})
    out["helpsteer2_preference.jsonl"] = preference
    attributes = _read(shared / "math_attributes_train.jsonl")[:cfg["attribute_rows"]]
    out["armo_multi_objective.jsonl"], out["helpsteer2_attributes.jsonl"] = _attribute_rows(attributes)
    def short(rows: list[dict]) -> list[dict]:  # whole solutions that fit a small max_length (none is cut)
        return [r for r in rows if len(r["prompt"]) + sum(map(len, r["steps"])) <= cfg["max_step_chars"]]

    steps = (short(_read(shared / "processbench_prm_train.jsonl"))[:cfg["step_rows"] // 2]
             + short(_read(shared / "bigbench_mistake_prm_train.jsonl"))[:cfg["step_rows"] - cfg["step_rows"] // 2])
    out["mistral_prm_data.jsonl"], out["mistral_orm_data.jsonl"] = step_conversations(steps)
    problems = _problems(_read(shared / "gsm8k_pairs_test.jsonl"))
    usable = [p for p in problems if p["good"] and len(p["bad"]) >= cfg["candidates"] - 1]
    k = cfg["bestofn_problems"]
    for i, name in enumerate(["mistral_gsm8k_test", "mistral_math500_test", "deepseek_gsm8k_test",
                              "deepseek_math500_test"]):
        out[f"{name}.jsonl"] = _bestofn(usable[i * k:(i + 1) * k], cfg["candidates"], rng)
    out["gsm8k_bestofn.jsonl"] = _bestofn(usable[:4 * k], cfg["candidates"], rng)
    out["rewardbench2.jsonl"] = _rewardbench2(problems[::-1], cfg["rewardbench2_problems"])
    for path in sorted((shared / "rewardbench-partial").glob("*.jsonl")):
        out[f"rewardbench/{path.name}"] = _read(path)[:cfg["rewardbench_per_subset"]]
    return out


def main(shared: str, out_dir: str, sizes: dict) -> None:
    """Build every sample in memory first, then write each file atomically (nothing half-written on an error)."""
    from rmflow.io import atomic_dir, write_json

    files = build(shared, sizes)
    out = Path(out_dir)
    with atomic_dir(out / "rewardbench") as tmp:
        for name, rows in files.items():
            if name.startswith("rewardbench/"):
                _write(tmp / name.split("/", 1)[1], rows)
    for name, rows in files.items():
        if not name.startswith("rewardbench/"):
            _write(out / name, rows)
    write_json(out / "manifest.json", {"source": str(shared), "sizes": {**DEFAULTS, **sizes},
                                       "rows": {name: len(rows) for name, rows in files.items()},
                                       "layouts": {k: {"layout": v[0], "from": v[1]} for k, v in SAMPLES.items()}})
    log.info("wrote %d sample files to %s", len(files), out_dir)
