"""LLM-as-a-judge (methods.md §9): a causal LM asked which answer is better, read from its next-token
probabilities of the two verdict tokens in both orders (no sampling, deterministic), scored like the pair-PM.

The judge is a local or hub causal LM (``model``), the run's model of ``model_method`` for the same base (the
embedded default: the pair-PM), or an OpenAI-compatible server (``endpoint``) answering with top logprobs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.methods.pairwise.pm import render_context
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

VERSION = 1
KIND = "pairwise"

# rmflow plan: the instruct model reads both answers in one prompt, in both orders
SIZING = {"head": "lm", "score": "both_orders", "logit_positions": 2}
READS = None  # no training data
PLACEHOLDERS = ("{question}", "{answer_a}", "{answer_b}")
DEFAULT_TEMPLATE = ("[CONTEXT] {question} [RESPONSE A] {answer_a} [RESPONSE B] {answer_b} \n")
JUDGE_FILE = "judge.json"


@dataclass(frozen=True)
class Config:
    """Judge options."""

    model_method: str = "pair_pm"  # the run's method whose model of the same base is the judge
    model: str | None = None  # or any local directory / hub id of a causal LM
    revision: str | None = None  # a hub judge model's commit, tag or branch (use_base: the base's revision)
    use_base: bool = False  # or the pair's base model itself, zero-shot (an instruct model as its own judge)
    template: str = DEFAULT_TEMPLATE  # user turn with {question}, {answer_a}, {answer_b}; verdict tokens A and B
    endpoint: str | None = None  # an OpenAI-compatible base URL (.../v1) instead of a local model
    endpoint_model: str = "judge"  # the model name sent to the endpoint

    def __post_init__(self):
        missing = [p for p in PLACEHOLDERS if p not in self.template]
        if missing:
            raise ValueError(f"the judge template lacks {', '.join(missing)}")


# rmflow hub-check looks up a judge model of its own (not use_base, not an endpoint) before anything is submitted
HUB_MODELS = (("model", "revision"),)
SETUP_ONLY = True  # nothing is trained: a local job writes the judge directory (no GPU preset is held for it)


def _external(config: Config) -> bool:
    return bool(config.model or config.endpoint or config.use_base)


def requires(config: Config) -> list[str]:
    return [] if _external(config) else [config.model_method]


def _judge_model(config: Config, spec: RunSpec, results: str) -> str | None:
    if config.endpoint:
        return None
    if config.use_base:
        return spec.base_model
    return config.model or f"{results}/models/{config.model_method}/{spec.base}"


def extra_inputs(config: Config, base: str, results: str = "results") -> list[str]:
    """The judge model of the same base when the run trains it (a hub id or endpoint is no file; a built base
    already is an input of every job of its base)."""
    return [] if _external(config) else [f"{results}/models/{config.model_method}/{base}"]


def renderer(template: str):
    def render(context: list[dict], answer_a: str, answer_b: str) -> str:
        question = context[0]["content"] if len(context) == 1 else render_context(context)
        return template.format(question=question, answer_a=answer_a, answer_b=answer_b)
    return render


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    """A judge is not trained: this writes the judge directory (which model, which template)."""
    from rmflow.io import atomic_dir, write_json, write_text

    config = spec.options
    from rmflow.hub import hub_record

    model = init or _judge_model(config, spec, "results")
    revision = spec.revision if config.use_base else config.revision
    hub = {"base": hub_record(model, revision)} if model and hub_record(model, revision) else {}
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / JUDGE_FILE, {**asdict(config), "judge_model": model, "judge_revision": revision})
        write_text(tmp / "rmflow_run.json", dataclasses.replace(spec, hub=hub).to_json())
        write_json(tmp / "metrics.json", {"method": "judge", "base": spec.base, "judge_model": model,
                                          "endpoint": config.endpoint, "hub": hub})


class EndpointJudge:
    """The same two-order verdict probabilities from an OpenAI-compatible /completions endpoint's top logprobs."""

    kind = "pairwise"

    def __init__(self, base_url: str, model: str, template: str, timeout: float = 60):
        self.url, self.model, self.render, self.timeout = base_url.rstrip("/") + "/completions", model, \
            renderer(template), timeout

    def _p_a(self, prompt: str) -> float:
        body = json.dumps({"model": self.model, "prompt": prompt, "max_tokens": 1, "temperature": 0,
                           "logprobs": 5}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                top = json.load(response)["choices"][0]["logprobs"]["top_logprobs"][0]
        except (OSError, KeyError, IndexError, ValueError) as exc:
            raise RmflowError(f"judge endpoint {self.url} gave no usable logprobs ({exc})") from exc
        return verdict_probability(top)

    def score_pairs(self, rows: list[dict]) -> dict:
        p1, p2 = [], []
        for r in rows:
            context, good, bad = r["chosen"][:-1], r["chosen"][-1]["content"], r["rejected"][-1]["content"]
            p1.append(self._p_a(self.render(context, good, bad)))
            p2.append(1 - self._p_a(self.render(context, bad, good)))
        return {"p_order1": p1, "p_order2": p2, "p_chosen": [(a + b) / 2 for a, b in zip(p1, p2)]}

    @staticmethod
    def summary(scored: dict) -> dict:
        from rmflow.methods.pairwise.model import PairwiseScorer

        return PairwiseScorer.summary(scored)


def verdict_probability(top_logprobs: dict[str, float]) -> float:
    """P(A) from the two verdict tokens' logprobs (leading spaces ignored); neither present gives 0.5, a tie."""
    logprob = {}
    for token, value in top_logprobs.items():
        key = token.strip()
        if key in ("A", "B"):
            logprob[key] = max(value, logprob.get(key, -math.inf))
    a, b = logprob.get("A", -math.inf), logprob.get("B", -math.inf)
    if a == b == -math.inf:
        return 0.5
    top = max(a, b)
    return math.exp(a - top) / (math.exp(a - top) + math.exp(b - top))


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    from rmflow.methods.pairwise.model import PairwiseScorer
    from rmflow.models.load import load_for_scoring, load_tokenizer

    settings = json.loads(Path(model_dir, JUDGE_FILE).read_text())
    if settings["endpoint"]:
        return EndpointJudge(settings["endpoint"], settings["endpoint_model"], settings["template"])
    revision = settings.get("judge_revision")
    tokenizer = load_tokenizer(settings["judge_model"], revision=revision)
    attention = RunSpec.read(Path(model_dir, "rmflow_run.json")).attn_implementation  # the judge base's rule
    model = load_for_scoring(settings["judge_model"], tokenizer, auto_class="AutoModelForCausalLM",
                             attn_implementation=attention, revision=revision)
    return PairwiseScorer(model, tokenizer, 4096, "left", batch_size, device, render=renderer(settings["template"]))
