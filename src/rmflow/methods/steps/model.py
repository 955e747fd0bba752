"""Training and scoring shared by the PRM and the ORM (rmflow.methods.prm / orm)."""

from __future__ import annotations

import logging

from rmflow.methods.steps.chats import (
    MINUS,
    PLUS,
    StepText,
    aggregate,
    encode_conversation,
    label_ids,
    label_loss,
    outcome_messages,
    pack,
    packed_label_loss,
)
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)


def read_step_rows(path: str) -> list[dict]:
    """Prepared step-labelled chats (kind ``steps``: ``prepare-data`` with format step_rows, prm_conversations or
    orm_conversations), each with its file and row for error messages."""
    from rmflow.data.formats import read_prepared

    return [{**r, "__file__": path, "__row__": i} for i, r in enumerate(read_prepared(path), start=1)]


def train_steps(spec: RunSpec, out_dir: str, outcome: bool, options, data: str | None = None,
                init: str | None = None) -> None:

    from rmflow.train.batching import length_grouped_batches, padding_fraction
    from rmflow.train.loop import train_loop
    from rmflow.train.save import save_run
    from rmflow.train.start import start_run

    config, source, start, rows, tokenizer, model = start_run(spec, read_step_rows, data, init,
                                                              auto_class="AutoModelForCausalLM")
    plus, minus = label_ids(tokenizer)
    ids_of = {PLUS: plus, MINUS: minus}
    examples, too_long = [], 0
    for r in rows:
        ids, positions = encode_conversation(tokenizer, outcome_messages(r["messages"]) if outcome else r["messages"],
                                             ids_of)
        if len(ids) > config.max_length:  # a cut conversation would lose labels: skip it, counted
            too_long += 1
            continue
        examples.append((ids, positions))
    if too_long:
        log.warning("skipped %d of %d step rows longer than max_length %d", too_long, len(rows), config.max_length)
    # a training unit is one conversation, or with packing one row of several (per_device_batch counts units)
    units = pack([len(ids) for ids, _ in examples], max(options.packed_length, config.max_length)) \
        if options.packing else [[i] for i in range(len(examples))]
    lengths = [sum(len(examples[i][0]) for i in unit) for unit in units]

    def epoch_batches(epoch: int) -> list[list[int]]:
        return length_grouped_batches(lengths, config.per_device_batch, config.seed + epoch, config.group_by_length)

    def loss_fn(model, indices: list[int]):
        if options.packing:
            return packed_label_loss(model, [[examples[i] for i in units[u]] for u in indices], tokenizer.pad_token_id)
        return label_loss(model, [examples[units[u][0]] for u in indices], tokenizer.pad_token_id)

    first_epoch = epoch_batches(0)
    pad_frac = padding_fraction([[[0] * lengths[u] for u in b] for b in first_epoch])
    result = train_loop(model, epoch_batches, len(first_epoch), loss_fn, config)
    # "pairs"/"correct" count label tokens here: train_accuracy is the label-token accuracy
    metrics = {**result["metrics"], "padding_fraction": pad_frac, "train_conversations": len(examples),
               "skipped_too_long": too_long, "outcome_model": outcome, "train_data": source, "initialised_from": start,
               "packing": options.packing, "training_rows": len(units)}
    save_run(result, tokenizer, spec, out_dir, metrics)


class StepScorer:
    """P(+) per step (PRM) or for the whole solution (ORM), aggregated into one score per response."""

    kind = "scalar"

    def __init__(self, model, tokenizer, outcome: bool, aggregation: str, max_length: int,
                 batch_size: int = SCORE_BATCH_SIZE, device: str = "cpu"):
        self.model, self.tokenizer = model.eval().to(device), tokenizer
        self.outcome, self.aggregation, self.max_length = outcome, aggregation, max_length
        self.batch_size, self.device = batch_size, device
        plus, minus = label_ids(tokenizer)
        self.ids_of, self.pair = {PLUS: plus, MINUS: minus}, [plus, minus]
        self.step_text = StepText()  # the scored data set's step layout (best-of-N sets declare theirs)

    def step_probabilities(self, problems: list[str], answers: list[str], progress: bool = True) -> list[list[float]]:
        """P(+) at every step of each answer (steps as ``step_text`` cuts them; by default its lines), every
        earlier label fixed to "+"."""
        chats = [self.step_text.chat(problem, answer, self.outcome) for problem, answer in zip(problems, answers)]
        return self.chat_probabilities(chats, progress)

    def chat_probabilities(self, chats: list[list[dict]], progress: bool = True) -> list[list[float]]:
        """P(+) at every assistant turn of step-labelled chats, in one forward pass each (labels read as "+")."""
        import torch
        from tqdm.auto import tqdm

        from rmflow.methods.pairwise.pm import logits_at
        from rmflow.train.batching import pad

        encoded = []
        for chat in chats:
            chat = outcome_messages(chat) if self.outcome else chat
            chat = [{**m, "content": PLUS} if m["role"] == "assistant" else m for m in chat]
            ids, positions = encode_conversation(self.tokenizer, chat, self.ids_of)
            keep = [p for p in positions if p < self.max_length] or [min(positions[0], self.max_length - 1)]
            encoded.append((ids[:self.max_length], keep))
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        out: list[list[float]] = [[] for _ in encoded]
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), desc="score steps", disable=not progress):
                idx = order[start:start + self.batch_size]
                ids, mask = pad([encoded[i][0] for i in idx], self.tokenizer.pad_token_id)
                width = max(len(encoded[i][1]) for i in idx)
                at = torch.tensor([[p - 1 for p in encoded[i][1]] + [0] * (width - len(encoded[i][1])) for i in idx])
                logits = logits_at(self.model, ids.to(self.device), mask.to(self.device), at.to(self.device))
                probs = torch.softmax(logits[..., self.pair], dim=-1)[..., 0].cpu()
                for row, i in enumerate(idx):
                    out[i] = probs[row, :len(encoded[i][1])].tolist()
        return out

    def details(self, conversations: list[list[dict]], progress: bool = True) -> dict:
        """score (the aggregate) and steps (P(+) at every step), one row per conversation."""
        problems = [" ".join(m["content"] for m in c[:-1] if m["role"] == "user") for c in conversations]
        steps = self.step_probabilities(problems, [c[-1]["content"] for c in conversations], progress)
        return {"score": [aggregate(p, self.aggregation) for p in steps], "steps": steps}

    def score_conversations(self, conversations: list[list[dict]], progress: bool = True) -> list[float]:
        return self.details(conversations, progress)["score"]

    def score_pairs(self, rows: list[dict]) -> dict:
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}

    def summary(self, scored: dict) -> dict:
        return {"aggregation": self.aggregation}


def load_step_scorer(model_dir: str, outcome: bool, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    from rmflow.models.load import load_for_scoring, load_tokenizer

    spec = RunSpec.read(f"{model_dir}/rmflow_run.json")
    options = spec.options
    tokenizer = load_tokenizer(model_dir)
    model = load_for_scoring(model_dir, tokenizer, auto_class="AutoModelForCausalLM")
    return StepScorer(model, tokenizer, outcome, options.aggregation, spec.train.max_length,
                      batch_size, device)
