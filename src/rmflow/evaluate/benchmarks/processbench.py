"""ProcessBench (Zheng et al. 2024; hub ``Qwen/ProcessBench``, splits gsm8k, math, olympiadbench, omnimath),
scored as QwenLM/ProcessBench @ e802463 scores it (``code/run_eval.py``, ``code/run_eval_prm_rlhflow.py``).

Rows: ``id, generator, problem, steps[], final_answer_correct, label`` (the index of the earliest wrong step, -1
when every step is right). A process reward model predicts the first step it judges wrong, -1 if none; a row is
matched iff the prediction equals ``label``. Per split: acc on erroneous rows (label != -1), acc on correct rows,
F1 = their harmonic mean; headline = the mean F1 over the splits.

rmflow's PRMs (the Math-Shepherd recipe) read each step as RLHFlow's script feeds it: the first user turn is the
problem, a blank line and step 1, each later step its own user turn, an assistant ``+`` after each; a step is judged
wrong when P(+) < 0.5 over {+, -} (the script takes the greedy token; the two agree where +/- carry the mass).
"""

from __future__ import annotations

from rmflow.data.convert import LayoutError
from rmflow.evaluate.benchmarks import mean

NAME = "processbench"
SOURCE = "QwenLM/ProcessBench code/run_eval.py, code/run_eval_prm_rlhflow.py"
TIE_RULE = "a step is wrong when P(+) < 0.5; the prediction must equal the label exactly"
SPLITS = ("gsm8k", "math", "olympiadbench", "omnimath")
COLUMNS = ("GSM8K", "MATH", "OlympiadBench", "Omni-MATH")
STEP_LEVEL = True


def convert(raw: dict) -> dict:
    for field in ("id", "problem", "steps", "label"):
        if raw.get(field) is None:
            raise LayoutError(field, "is missing (ProcessBench rows: id, generator, problem, steps[], label)")
    steps, label = raw["steps"], raw["label"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise LayoutError("steps", "must be a non-empty list of strings")
    if not isinstance(label, int) or not -1 <= label < len(steps):
        raise LayoutError("label", f"must be -1 or a step index below {len(steps)}, not {label!r}")
    split = str(raw.get("__split__") or raw.get("split") or "")
    if split not in SPLITS:
        raise LayoutError("split", f"{split!r} is none of {', '.join(SPLITS)}")
    kind = "error" if label != -1 else "correct"
    return {"id": f"{split}:{raw['id']}", "subset": f"{split}/{kind}", "label": label,
            "problem": str(raw["problem"]), "steps": list(steps), "context": [], "candidates": [], "comparisons": []}


def step_chat(item: dict) -> list[dict]:
    chat = []
    for k, step in enumerate(item["steps"]):
        chat.append({"role": "user", "content": item["problem"] + "\n\n" + step if k == 0 else step})
        chat.append({"role": "assistant", "content": "+"})
    return chat


def first_wrong(step_probs: list[float]) -> int:
    return next((k for k, p in enumerate(step_probs) if p < 0.5), -1)


def credit(item: dict, step_probs: list[float]) -> dict:
    predicted = first_wrong(step_probs)
    return {"correct": float(predicted == item["label"]), "predicted": predicted}


def f1(error_acc: float | None, correct_acc: float | None) -> float | None:
    if error_acc is None or correct_acc is None:
        return None
    return 2 * error_acc * correct_acc / (error_acc + correct_acc) if error_acc + correct_acc > 0 else 0.0


def score_fn(per_subset: dict[str, tuple[float, int]]) -> dict:
    def acc(key):
        return per_subset[key][0] if key in per_subset else None

    scores = {s: f1(acc(f"{s}/error"), acc(f"{s}/correct")) for s in SPLITS}
    present = [v for v in scores.values() if v is not None]
    headline = mean(present) if len(present) == len(SPLITS) else None
    return {"Score": headline, **dict(zip(COLUMNS, scores.values()))}
