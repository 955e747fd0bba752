"""``rmflow rank``: score n responses per prompt with a trained RM for online RLHF.

Scalar RMs score every response (n forward passes, batched); pairwise ones (pair-PM, judge) run a knockout
(n − 1 comparisons for the best, n − 1 more for the worst) or a round robin (n(n − 1)/2, every response ranked).
Writes the scored rows, best-vs-worst DPO pairs in the standard format, and the top-k responses per prompt for
rejection sampling. Prompts whose best and worst cannot be told apart give no DPO pair and are counted.
"""

from __future__ import annotations

import logging

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE

log = logging.getLogger(__name__)
SCORE_TOLERANCE = 1e-5


def load_rank_rows(path: str) -> list[dict]:
    from rmflow.data.loaders import read_rows

    rows = []
    for raw in read_rows(path):
        responses = raw.get("responses", raw.get("answers"))
        if "prompt" not in raw:
            raise RmflowError("is missing", file=raw.get("__file__"), row=raw.get("__row__"), field="prompt")
        if not isinstance(responses, list) or len(responses) < 2:
            raise RmflowError("needs a list of at least 2 responses", file=raw.get("__file__"),
                              row=raw.get("__row__"), field="responses")
        context = raw["prompt"] if isinstance(raw["prompt"], list) else [{"role": "user", "content": raw["prompt"]}]
        rows.append({"context": context, "responses": responses, "source": raw})
    return rows


def rank_rows(module, scorer, rows: list[dict], mode: str, top_k: int) -> tuple[list, list, list, dict]:
    from rmflow.methods.pairwise.model import knockout, round_robin

    scored, pairs, top, stats = [], [], [], {"prompts": len(rows), "no_pair": 0, "comparisons": 0, "forwards": 0}
    if module.KIND == "scalar":
        flat = [r["context"] + [{"role": "assistant", "content": x}] for r in rows for x in r["responses"]]
        values, k = scorer.score_conversations(flat), 0
        stats["forwards"] = len(flat)
    for r in rows:
        n = len(r["responses"])
        if module.KIND == "scalar":
            scores, k = values[k:k + n], k + n
            order = sorted(range(n), key=lambda i: -scores[i])
            best, worst, record = order[0], order[-1], {"scores": scores}
            # scores agree only to float rounding across batch shapes: a gap this small is a tie, not a preference
            distinct = scores[best] - scores[worst] > SCORE_TOLERANCE * max(1.0, abs(scores[best]))
            distinct = distinct and r["responses"][best] != r["responses"][worst]
        else:
            def compare(i, j, r=r):
                return scorer.compare([(r["context"], r["responses"][i], r["responses"][j])], progress=False)[
                    "p_chosen"][0]
            if mode == "round_robin":
                wins, used = round_robin(n, compare)
                order = sorted(range(n), key=lambda i: -wins[i])
                record = {"wins": wins}
            else:
                winner, used_best = knockout(n, compare)
                loser, used_worst = knockout(n, lambda i, j: 1 - compare(i, j))
                used, order, record = used_best + used_worst, [winner], {}
                order.append(loser)
            best, worst, distinct = order[0], order[-1], order[0] != order[-1]
            stats["comparisons"] += used
            stats["forwards"] += 2 * used
        scored.append({**{k: v for k, v in r["source"].items() if not k.startswith("__")}, **record,
                       "best": best, "worst": worst})
        if distinct:
            pairs.append({"chosen": r["context"] + [{"role": "assistant", "content": r["responses"][best]}],
                          "rejected": r["context"] + [{"role": "assistant", "content": r["responses"][worst]}]})
        else:
            stats["no_pair"] += 1
        keep = order[:top_k] if module.KIND == "scalar" or mode == "round_robin" else order[:1]
        top.append({"prompt": r["context"], "responses": [r["responses"][i] for i in keep]})
    return scored, pairs, top, stats


def main(method: str, model_dir: str, data: str, out_dir: str, mode: str = "knockout", top_k: int = 2,
         batch_size: int = SCORE_BATCH_SIZE) -> dict:
    from pathlib import Path

    from rmflow import methods
    from rmflow.io import atomic_dir, write_json, write_jsonl
    from rmflow.models.load import default_device

    if mode not in ("knockout", "round_robin"):
        raise RmflowError(f"mode must be knockout or round_robin, not '{mode}'", field="mode")
    module = methods.get(method)
    rows = load_rank_rows(data)
    scorer = module.load_scorer(model_dir, device=default_device(), batch_size=batch_size)
    if module.KIND == "pairwise" and not hasattr(scorer, "compare"):
        raise RmflowError(f"method '{method}' has no pairwise comparator usable for ranking")
    scored, pairs, top, stats = rank_rows(module, scorer, rows, mode, top_k)
    if module.KIND == "pairwise" and mode == "knockout" and top_k > 1:
        log.info("a knockout finds the best response only: top-k holds 1 response per prompt (use round_robin)")
    if stats["no_pair"]:
        log.warning("%d prompts gave no DPO pair: best and worst could not be told apart", stats["no_pair"])
    with atomic_dir(out_dir) as tmp:
        write_jsonl(Path(tmp) / "scored.jsonl", scored)
        write_jsonl(Path(tmp) / "dpo_pairs.jsonl", pairs)
        write_jsonl(Path(tmp) / "top_k.jsonl", top)
        write_json(Path(tmp) / "stats.json", {**stats, "method": method, "mode": mode, "top_k": top_k,
                                              "dpo_pairs": len(pairs)})
    return stats
