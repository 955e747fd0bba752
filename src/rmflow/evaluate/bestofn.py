"""Best-of-N evaluation of scalar reward models on candidate sets {context, answers[N], labels[N]} (methods.md §7;
prepared from the seed's {prompt, answers, label} layout, format ``bestofn``).

For each N in the configured list, every problem draws ``subsets`` random N-subsets of its candidates (fixed seed);
the highest-scored candidate of a subset is picked (ties: the first drawn) and accuracy is the share of picks that
are correct, averaged over subsets and problems. PRMs also report step-level accuracy where step labels exist.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE

log = logging.getLogger(__name__)


def check_sets(rows: list[dict], n_max: int, source: str) -> None:
    for i, row in enumerate(rows, start=1):
        where = row.get("__row__", i)
        for field in ("answers", "labels"):
            if field not in row:
                raise RmflowError("is missing", file=source, row=where, field=field)
        if len(row["answers"]) != len(row["labels"]):
            raise RmflowError(f"{len(row['labels'])} labels for {len(row['answers'])} answers", file=source,
                              row=where, field="labels")
        if len(row["answers"]) < n_max:
            raise RmflowError(f"N_max {n_max} is larger than this set's {len(row['answers'])} candidates",
                              file=source, row=where, field="answers")


def best_of_n(scores: list[list[float]], labels: list[list[int]], ns: list[int], subsets: int,
              seed: int) -> dict[int, float]:
    rng = random.Random(seed)
    accuracy = {}
    for n in ns:
        hits, draws = 0, 0
        for problem_scores, problem_labels in zip(scores, labels):
            for _ in range(subsets):
                pick = rng.sample(range(len(problem_scores)), n)
                best = max(pick, key=lambda i: problem_scores[i])  # max keeps the first of equal scores
                hits += problem_labels[best]
                draws += 1
        accuracy[n] = hits / draws
    return accuracy


# candidates scored between two appends to the resume file: a set this large (the paper's 1.35 M GSM8K candidates
# take about a day on one GPU) keeps what a preemption or a time limit would otherwise throw away
CHUNK_CANDIDATES = 50_000


def _chunks(rows: list[dict], size: int | None = None) -> list[list[int]]:
    """[start, end) row ranges of at least ``size`` candidates each (the last may be smaller)."""
    size = size or CHUNK_CANDIDATES
    out, start, count = [], 0, 0
    for i, row in enumerate(rows):
        count += len(row["answers"])
        if count >= size:
            out.append([start, i + 1])
            start, count = i + 1, 0
    return out + [[start, len(rows)]] if start < len(rows) else out


def _fingerprint(model_dir: str, data: str) -> str:
    """What a partial result belongs to: the model's run record and weights' names and sizes, and the data file."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*")) if Path(model_dir).is_dir() else []:
        if path.is_file():
            digest.update(f"{path.name}:{path.stat().st_size}".encode())
            if path.name == "rmflow_run.json":
                digest.update(path.read_bytes())
    with open(data, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def score_candidates(scorer, rows: list[dict], resume_file: str | None, fingerprint: str | None) -> list[float]:
    """Every candidate's score. With ``resume_file``, a set of more than one chunk is scored chunk by chunk, each
    chunk's scores appended (and synced) to the file as soon as they exist, and a rerun with the same fingerprint
    starts after the last complete chunk; a set of one chunk is scored in one call, as without the file."""
    import json
    import os

    def flat(part):
        return [r["context"] + [{"role": "assistant", "content": a}] for r in part for a in r["answers"]]

    chunks = _chunks(rows)
    if not resume_file or len(chunks) < 2:
        return scorer.score_conversations(flat(rows))
    done: dict[int, list[float]] = {}
    path = Path(resume_file)
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError:
            header = {}
        if header.get("fingerprint") == fingerprint and header.get("chunks") == chunks:
            for line in lines[1:]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # the line a kill cut short
                    break
                done[record["chunk"]] = record["scores"]
            log.info("resuming from %s: %d of %d chunks already scored", path, len(done), len(chunks))
        else:
            log.info("%s belongs to another model or data: scoring from the start", path)
    if not done:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"fingerprint": fingerprint, "chunks": chunks}) + "\n", encoding="utf-8")
    scores: list[float] = []
    with open(path, "a", encoding="utf-8") as fh:
        for k, (start, end) in enumerate(chunks):
            if k not in done:
                done[k] = scorer.score_conversations(flat(rows[start:end]))
                fh.write(json.dumps({"chunk": k, "scores": done[k]}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
                log.info("scored chunk %d of %d (rows %d-%d); kept in %s", k + 1, len(chunks), start, end - 1, path)
            scores += done[k]
    return scores


def main(method: str, base: str, model_dir: str, data: str, ns: list[int], subsets: int, seed: int, out: str,
         steps_data: str | None = None, batch_size: int = SCORE_BATCH_SIZE, set_name: str | None = None,
         step_text: dict | None = None, resume_file: str | None = None) -> dict:
    from rmflow import methods
    from rmflow.data.formats import read_prepared
    from rmflow.io import write_json
    from rmflow.models.load import default_device

    module = methods.get(method)
    if module.KIND != "scalar":
        raise RmflowError(f"best-of-N needs one score per answer; method '{method}' is {module.KIND}")
    rows = read_prepared(data)
    check_sets(rows, max(ns), data)
    scorer = module.load_scorer(model_dir, device=default_device(), batch_size=batch_size)
    if hasattr(scorer, "step_text"):  # PRM/ORM: steps cut as this candidate set writes them
        from rmflow.methods.steps.chats import StepText

        scorer.step_text = StepText.of(step_text)
    flat_scores = score_candidates(scorer, rows, resume_file, _fingerprint(model_dir, data) if resume_file else None)
    scores, k = [], 0
    for r in rows:
        scores.append(flat_scores[k:k + len(r["answers"])])
        k += len(r["answers"])
    accuracy = best_of_n(scores, [r["labels"] for r in rows], ns, subsets, seed)
    result = {"method": method, "base": base, "set": set_name or Path(data).stem, "data": data, "sets": len(rows),
              "subsets": subsets, "seed": seed,
              "accuracy": {str(n): a for n, a in accuracy.items()}, "step_accuracy": None,
              "oracle": sum(max(r["labels"]) for r in rows) / len(rows), "step_text": step_text or None}
    if steps_data and hasattr(scorer, "chat_probabilities") and not scorer.outcome:
        chats = [r["messages"] for r in read_prepared(steps_data)]
        probs = scorer.chat_probabilities(chats)
        labels = [[m["content"].strip() == "+" for m in chat if m["role"] == "assistant"] for chat in chats]
        pairs = [(p > 0.5) == label for ps, ls in zip(probs, labels) for p, label in zip(ps, ls)]
        result["step_accuracy"] = sum(pairs) / len(pairs) if pairs else None
        result["step_data"] = steps_data
    if hasattr(scorer, "summary"):
        result["method_stats"] = scorer.summary({})
    log.info("best-of-N %s/%s: %s", base, method, result["accuracy"])
    write_json(out, result)
    if resume_file:
        Path(resume_file).unlink(missing_ok=True)  # the result is whole: nothing left to resume
    return result


def table(files: list[str], out_csv: str, out_png: str, out_svg: str | None = None) -> None:
    """Gather per-run best-of-N files into one CSV (a row per model and N) and a PNG of the curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    from rmflow.io import atomic_path

    records = [json.loads(Path(f).read_text()) for f in files]
    rows = [{"set": r["set"], "model": f"{r['base']}/{r['method']}", "base": r["base"], "method": r["method"],
             "n": int(n), "accuracy": 100 * a,
             "step_accuracy": None if r["step_accuracy"] is None else 100 * r["step_accuracy"]}
            for r in records for n, a in r["accuracy"].items()]
    frame = pl.DataFrame(rows).sort(["set", "model", "n"])
    with atomic_path(out_csv) as tmp:
        frame.write_csv(tmp)
    sets = list(frame["set"].unique(maintain_order=True))
    fig, axes = plt.subplots(1, len(sets), figsize=(7 * len(sets), 4.5), squeeze=False)
    # a colour per method, a line style per base: stays readable beyond ten curves
    methods_seen = list(frame["method"].unique(maintain_order=True))
    bases_seen = list(frame["base"].unique(maintain_order=True))
    styles = ["-", "--", ":", "-."]
    for ax, name in zip(axes[0], sets):
        part_set = frame.filter(pl.col("set") == name)
        for model in part_set["model"].unique(maintain_order=True):
            part = part_set.filter(pl.col("model") == model)
            ax.plot(part["n"], part["accuracy"], marker="o", label=model,
                    color=plt.get_cmap("tab10")(methods_seen.index(part["method"][0]) % 10),
                    linestyle=styles[bases_seen.index(part["base"][0]) % len(styles)])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("N (candidates per problem)")
        ax.set_ylabel("best-of-N accuracy (%)")
        ax.set_title(f"Best-of-N on {name}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    if out_svg:
        plt.rcParams["svg.hashsalt"] = "rmflow"
        with atomic_path(out_svg) as tmp:
            fig.savefig(tmp, format="svg", metadata={"Date": None})
    plt.close(fig)
