"""A toy reward model of two stages, registered from outside rmflow (``methods.<name>.module: toy_two_stage``).

It exists to show that a new multi-stage method is one module plus one config entry: the generic stage rules run
it, evaluate scores it and the leaderboard lists it. Stage ``count`` counts each word in the chosen and in the
rejected answers of the training pairs; stage ``weigh`` turns the counts into a smoothed log-ratio per word and
writes the model, whose reward for an answer is the mean weight of its words.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rmflow.options import SCORE_BATCH_SIZE

VERSION = 1
KIND = "scalar"
STAGES = ("count", "weigh")


@dataclass(frozen=True)
class Config:
    smoothing: float = 1.0  # added to every count before the log-ratio


def _words(conversation: list[dict]) -> list[str]:
    return conversation[-1]["content"].lower().split()


def stage_inputs(plan, method: str, base: str, config: Config, stage: str) -> dict[str, str]:
    if stage == "count":
        return {"data": plan.train_data(method, base)}
    return {"counts": plan.stage_dir(method, base, "count")}


def _count(data: str, out_dir: str) -> None:
    from rmflow.data.prepare import read_pairs

    rows = read_pairs(data)
    chosen = Counter(w for r in rows for w in _words(r["chosen"]))
    rejected = Counter(w for r in rows for w in _words(r["rejected"]))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "counts.json").write_text(json.dumps({"pairs": len(rows), "chosen": chosen, "rejected": rejected}))


def _weigh(spec_path: str, counts_dir: str, out_dir: str) -> None:
    from rmflow.spec import RunSpec

    spec = RunSpec.read(spec_path)
    config = spec.options
    counts = json.loads((Path(counts_dir) / "counts.json").read_text())
    words = set(counts["chosen"]) | set(counts["rejected"])
    weights = {w: math.log((counts["chosen"].get(w, 0) + config.smoothing)
                           / (counts["rejected"].get(w, 0) + config.smoothing)) for w in sorted(words)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "weights.json").write_text(json.dumps(weights))
    (out / "metrics.json").write_text(json.dumps({"method": spec.method, "base": spec.base,
                                                  "train_pairs": counts["pairs"], "words": len(weights)}))
    (out / "rmflow_run.json").write_text(spec.to_json())


def run_stage(stage: str, spec_path: str, inputs: dict[str, str], out_dir: str) -> None:
    if stage == "count":
        _count(inputs["data"], out_dir)
    else:
        _weigh(spec_path, inputs["counts"], out_dir)


def train(spec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    """Both stages in one process."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(spec.to_json())
        _count(data or spec.train_data, f"{scratch}/count")
        _weigh(str(spec_path), f"{scratch}/count", out_dir)


class WordScorer:
    kind = "scalar"

    def __init__(self, model_dir: str):
        self.weights = json.loads((Path(model_dir) / "weights.json").read_text())

    def score_conversations(self, conversations: list[list[dict]]) -> list[float]:
        return [sum(self.weights.get(w, 0.0) for w in words) / max(len(words), 1)
                for words in map(_words, conversations)]

    def score_pairs(self, rows: list[dict]) -> dict:
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return WordScorer(model_dir)
