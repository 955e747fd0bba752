"""Stand-ins for the benchmarks beyond RewardBench (rmflow.evaluate.benchmarks), in their real layouts: the hub
repositories of RM-Bench, JudgeBench, ProcessBench and PPE, and RMB's folder (a GitHub repository, not on the hub:
the rehearsal writes it where config/paper.yaml reads it). Text from rmflow's synthetic suite, as elsewhere."""

from __future__ import annotations

from pathlib import Path

from rmflow.data import synth

PPE_DOMAINS = ("MMLU-Pro", "MATH", "GPQA", "MBPP-Plus", "IFEval")
# where config/paper.yaml reads RMB: a clone of Zhou-Zoey/RMB-Reward-Model-Benchmark (docs/evaluation.md)
RMB_FOLDER = "external/RMB-Reward-Model-Benchmark/RMB_dataset"


def _items(seed: int, n: int) -> list[dict]:
    return synth.generate(seed, 0, n)["test"]


def _styles(text: str) -> list[str]:
    """RM-Bench's three styles of one answer: concise, detailed plain, detailed markdown."""
    return [text, f"{text} In more detail: {text}", f"**Answer.** {text}\n\n- {text}"]


def _rm_bench(seed: int) -> list[dict]:
    rows = []
    for k, it in enumerate(_items(seed, 4)[:10]):
        domain = ("chat", "code", "math", "safety-refuse", "safety-response")[k % 5]
        rows.append({"id": k, "prompt": it["prompt"], "chosen": _styles(it["chosen"]),
                     "rejected": _styles(it["rejected"]), "domain": domain})
    return rows


def _judgebench(seed: int, split: str) -> list[dict]:
    sources = ("mmlu-pro-math", "livebench-reasoning", "livebench-math", "livecodebench")
    rows = []
    for k, it in enumerate(_items(seed, 4)[:8]):
        a_first = k % 2 == 0
        rows.append({"pair_id": f"{split}-{k}", "original_id": k, "source": sources[k % 4], "question": it["prompt"],
                     "response_model": split, "response_A": it["chosen"] if a_first else it["rejected"],
                     "response_B": it["rejected"] if a_first else it["chosen"], "label": "A>B" if a_first else "B>A"})
    return rows


def _processbench(seed: int, split: str) -> list[dict]:
    rows = []
    for k, s in enumerate(synth.best_of_n_sets(seed, 2, 4)):
        picked = [s["labels"].index(1), s["labels"].index(0)]  # one right and one wrong solution per problem
        for j, (answer, correct) in enumerate((s["answers"][i], s["labels"][i]) for i in picked):
            steps = [line for line in answer.splitlines() if line.strip()]
            rows.append({"id": f"{split}-{k}-{j}", "generator": "rehearsal", "problem": s["prompt"], "steps": steps,
                         "final_answer_correct": bool(correct), "label": -1 if correct else len(steps) - 1})
    return rows


def _ppe_preference(seed: int) -> list[dict]:
    rows = []
    for k, it in enumerate(_items(seed, 4)[:8]):
        winner = "tie" if k == 3 else "tie (bothbad)" if k == 6 else ("model_a" if k % 2 else "model_b")
        first = winner != "model_b"
        rows.append({"question_id": f"q{k}", "prompt": it["prompt"],
                     "response_1": it["chosen"] if first else it["rejected"],
                     "response_2": it["rejected"] if first else it["chosen"], "winner": winner})
    return rows


def _ppe_best_of_k(seed: int) -> list[dict]:
    rows = []
    for k, s in enumerate(synth.best_of_n_sets(seed, 6, 4)):
        if 0 < sum(s["labels"]) < 4 and len(rows) < 3:
            right = s["labels"].index(1)
            wrong = [i for i, y in enumerate(s["labels"]) if not y]
            rows.append({"question_id": f"q{k}", "prompt": s["prompt"],
                         **{f"response_{i + 1}": a for i, a in enumerate(s["answers"])},
                         "scores": [bool(y) for y in s["labels"]],
                         "sampled_conflict_pairs": [[right, wrong[0]], [wrong[-1], right]]})
    return rows


def repos(seed: int, make_repo) -> list:
    splits = ("gsm8k", "math", "olympiadbench", "omnimath")
    card = "configs:\n- config_name: default\n  data_files:\n" + "".join(
        f"  - split: {s}\n    path: {s}.json\n" for s in splits)
    return [
        make_repo("THU-KEG/RM-Bench", {"total_dataset.json": _rm_bench(seed)}),
        make_repo("ScalerLab/JudgeBench", {f"data/{s}-00000-of-00001.jsonl": _judgebench(seed + 1, s)
                                           for s in ("gpt", "claude")}),
        make_repo("Qwen/ProcessBench", {f"{s}.json": _processbench(seed + 2 + k, s) for k, s in enumerate(splits)},
                  card=card),
        make_repo("lmarena-ai/PPE-Human-Preference-V1",
                  {"data/test-00000-of-00001.parquet": _ppe_preference(seed + 6)}),
        *[make_repo(f"lmarena-ai/PPE-{d}-Best-of-K",
                    {"data/train-00000-of-00001.parquet": _ppe_best_of_k(seed + 7 + k)})
          for k, d in enumerate(PPE_DOMAINS)],
    ]


def rmb_rows(seed: int) -> dict[str, list[dict]]:
    """RMB_dataset's files, relative to the folder: one pairwise and one best-of-N file per goal."""
    items = _items(seed, 4)
    out = {}
    for g, goal in enumerate(("Helpfulness", "Harmlessness")):
        pairs, bons = [], []
        for k, it in enumerate(items[4 * g:4 * g + 3]):
            turns = [{"role": "user", "content": it["prompt"], "language": "English"}]
            pairs.append({"pair_uid": f"{g}{k}", "conversation_input": turns,
                          "chosen": {"llm_name": "rehearsal-good", "answer": it["chosen"]},
                          "reject": {"llm_name": "rehearsal-bad", "answer": it["rejected"]},
                          "category_path": f"Pairwise_set/{goal}/Chat/Discussion"})
            bons.append({"bon_uid": f"{g}{k}", "conversation_input": turns,
                         "bon_best": {"llm_name": "rehearsal-good", "answer": it["chosen"]},
                         "loser_list": [{"llm_name": "rehearsal-bad", "answer": it["rejected"]},
                                        {"llm_name": "rehearsal-bad",
                                         "answer": items[(k + 5) % len(items)]["rejected"]}],
                         "category_path": f"BoN_set/{goal}/Chat/Discussion"})
        out[f"Pairwise_set/{goal}/Chat/Discussion.json"] = pairs
        out[f"BoN_set/{goal}/Chat/Discussion.json"] = bons
    return out


def write_rmb(root: str | Path, seed: int = 0) -> Path:
    """RMB's folder stand-in under ``root`` at RMB_FOLDER (the paper config's relative path)."""
    from rmflow.rehearsal.datasets import encode

    folder = Path(root) / RMB_FOLDER
    for name, rows in rmb_rows(seed).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(name, rows))
    return folder
