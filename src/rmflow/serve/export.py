"""``rmflow export``: a trained one-head reward model as the checkpoint RLHF trainers and servers load as it is.

What each loader needs, read from its code (docs/serving.md gives the sources):
- vLLM (``vllm serve E --runner pooling``) and SGLang: a ``*ForSequenceClassification`` architecture whose
  ``num_labels`` is 1 (vLLM enables its score API only then), safetensors weights, the chat template in the
  tokenizer files (``messages`` requests render with it).
- TRL's GRPO ``reward_funcs=E``: ``AutoModelForSequenceClassification.from_pretrained(E, num_labels=1)``, the
  tokenizer's own chat template, right padding, ``logits[:, 0]``; it sets pad = EOS when the tokenizer has no pad
  token, so the export carries a pad token distinct from EOS and ``config.pad_token_id``.
- OpenRLHF (``--reward.model_name_or_path E``): the base architecture plus a linear head named ``score`` (its default
  ``value_head_prefix``) without bias, read at the last non-pad token.
- verl's legacy reward worker: ``AutoModelForTokenClassification`` over the same weights, reading the ``score``
  head at the last token.
Only a method whose reward is one linear output of a ``*ForSequenceClassification`` declares ``EXPORT_HEAD`` (which
output is the reward: BT's only one, ODIN's quality head, the scalar ORM's); the others are served (``rmflow serve``).
The export is checked before it is put in place: reloaded with plain transformers, it must give the method's own
scores on probe conversations.
"""

from __future__ import annotations

import glob
import json
import logging
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)
EXPORT_RECORD = "rmflow_export.json"
TOLERANCE = 1e-4  # |export − method| on the probes, fp32 (bf16 checkpoints are compared in their own precision)
PROBES = [
    [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 = 4."}],
    [{"role": "user", "content": "Name a prime number."}, {"role": "assistant", "content": "Nine."}],
    [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Again, in French."}, {"role": "assistant", "content": "Bonjour !"}],
]


def plain_scores(model_dir: str, conversations: list[list[dict]]) -> list[float]:
    """Rewards as a plain-transformers user reads them: the tokenizer's template, no special tokens added, right
    padding, ``logits[:, 0]`` (TRL's GRPO reward path)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1).eval()
    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right", add_special_tokens=False)
    with torch.inference_mode():
        return model(**batch).logits[:, 0].float().tolist()


def _scores_of(method: str, base: str, given: list[str] | None) -> list[dict]:
    from rmflow.plan.paths import pattern

    paths = given if given is not None else sorted(glob.glob(pattern("scores").format(eval_set="*", method=method,
                                                                                        base=base)))
    out = []
    for path in paths:
        try:
            scores = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RmflowError(f"cannot read scores ({exc})", file=path) from exc
        out.append({"eval_set": scores.get("eval_set"), "benchmark": scores.get("benchmark"),
                    "score": scores.get("score"), "sections": scores.get("sections", {}), "file": path})
    return out


def model_card(spec, head: int, scores: list[dict], max_difference: float) -> str:
    from rmflow import __version__

    base_id = spec.hub.get("base", {}).get("id") or spec.base_model
    lines = ["---", "library_name: transformers", "pipeline_tag: text-classification",
             f"tags: [reward-model, rmflow, {spec.method}]"]
    if "/" in base_id and not Path(base_id).exists():
        lines.append(f"base_model: {base_id}")
    lines += ["---", "", f"# {spec.base} / {spec.method} reward model", "",
              f"A {spec.method} reward model trained with rmflow {__version__} on `{spec.base_model}` "
              f"(base `{spec.base}`), from `{spec.train_data}`.", "",
              f"- Reward: `logits[:, 0]` at the last token of the conversation rendered with this tokenizer's chat "
              f"template (the method's output {head}), no special tokens added by the tokenizer call.",
              f"- Training: max_length {spec.train.max_length}, truncation {spec.train.truncation_side}, "
              f"lr {spec.train.lr}, epochs {spec.train.epochs}.",
              f"- Checked at export: plain transformers gives the method's scores to {max_difference:.2e}.",
              f"- Hub inputs: `{json.dumps(spec.hub, sort_keys=True)}`", ""]
    if scores:
        lines += ["| eval set | benchmark | score |", "|---|---|---|"]
        lines += [f"| {s['eval_set']} | {s['benchmark']} | {s['score']:.4f} |" for s in scores
                  if isinstance(s.get("score"), (int, float))]
        lines.append("")
    lines += ["## Use", "", "```bash", "vllm serve <this folder> --runner pooling   # POST /classify, /pooling",
              "```", "", "TRL: `GRPOTrainer(reward_funcs=\"<this folder>\")`; OpenRLHF: "
              "`--reward.model_name_or_path <this folder>`. See rmflow's docs/serving.md.", ""]
    return "\n".join(lines)


def main(model_dir: str, out: str, scores: list[str] | None = None) -> dict:
    import torch

    from rmflow import methods
    from rmflow.io import atomic_dir, write_json, write_text
    from rmflow.models.load import load_for_scoring, load_tokenizer
    from rmflow.spec import RunSpec

    run = Path(model_dir, "rmflow_run.json")
    if not run.is_file():
        raise RmflowError("is not a model rmflow trained (no rmflow_run.json)", file=model_dir)
    spec = RunSpec.read(str(run))
    module = methods.get(spec.method)
    head = methods.hook(module, "EXPORT_HEAD")
    if head is None:
        raise RmflowError(f"a {spec.method} model's reward is not one linear head of a sequence classifier "
                          f"({module.KIND}), so no plain checkpoint reproduces it: serve it with "
                          f"`rmflow serve --model-dir {model_dir}` (docs/serving.md)", field="method")
    tokenizer = load_tokenizer(model_dir)
    model = load_for_scoring(model_dir, tokenizer, bf16=False, num_labels=_num_labels(model_dir))
    old = model.score
    new = torch.nn.Linear(old.in_features, 1, bias=old.bias is not None, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[head:head + 1])
        if old.bias is not None:
            new.bias.copy_(old.bias[head:head + 1])
    model.score = new
    model.config.num_labels = 1  # resets id2label/label2id to the single LABEL_0
    model.config.problem_type = "regression"
    model.config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.pad_token_id is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise RmflowError("the tokenizer's pad token equals EOS; retrain or fix the tokenizer", file=model_dir)
    method_scores = module.load_scorer(model_dir).score_conversations(PROBES, progress=False)
    found = _scores_of(spec.method, spec.base, scores)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        exported = plain_scores(str(tmp), PROBES)
        difference = max(abs(a - b) for a, b in zip(exported, method_scores))
        if difference > TOLERANCE:
            raise RmflowError(f"the export scores the probes {difference:.2e} away from the method's own scorer "
                              f"(tolerance {TOLERANCE}); not written", file=model_dir)
        record = {"source": str(Path(model_dir).resolve()), "method": spec.method, "base": spec.base, "head": head,
                  "max_length": spec.train.max_length, "truncation_side": spec.train.truncation_side,
                  "max_probe_difference": difference, "scores": found, "hub": spec.hub}
        write_json(Path(tmp) / EXPORT_RECORD, record)
        write_text(Path(tmp) / "README.md", model_card(spec, head, found, difference))
    log.info("exported %s to %s (probe difference %.2e)", model_dir, out, difference)
    return record


def _num_labels(model_dir: str) -> int:
    config = json.loads(Path(model_dir, "config.json").read_text(encoding="utf-8"))
    return len(config.get("id2label") or {}) or config.get("num_labels", 1)
