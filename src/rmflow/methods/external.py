"""Reward models rmflow did not train (a released RM on the hub, a local directory, a judge behind an endpoint),
evaluated by the same ``evaluate`` rule and rules as the trained ones and shown beside them, marked external.

Declared under ``reward_models:`` in the config (and picked by ``run.reward_models``), or given to ``rmflow
evaluate --external`` for a one-off score. Four kinds of scorer (a trained judge is the fifth, method ``judge``):
- ``classifier``: a ``*ForSequenceClassification``; the reward is output ``logit`` (ODIN-style two-head models have
  two), read at the last real token as for rmflow's own scalar RMs;
- ``armo``: RLHFlow's released ArmoRM through rmflow's own implementation of its architecture
  (rmflow.models.armo: its safetensors on transformers' LlamaModel plus the released gate, regression layer and
  transform matrix), with no remote code: the released file does not import under transformers 5;
- ``custom_forward``: a model with its own code (``trust_remote_code: true`` on it alone) whose forward output holds
  the reward in ``reward_field`` (RLHFlow's ArmoRM: ``score``, beside per-objective ``rewards``);
- ``pairwise_pm``: a causal LM speaking the pair-PM protocol (methods.md §2: "[CONTEXT] … [RESPONSE A] … [RESPONSE
  B] …", answer A or B, both orders averaged);
- ``judge_endpoint``: an OpenAI-compatible server asked with a judge template (P(A) from the top logprobs).
``trust_remote_code`` stays off unless a declaration turns it on. Nothing is trained: a local job writes the
declaration (``external.json``) into ``results/models/external/<name>``, which ``evaluate`` reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "declared"  # the scorer's own kind decides: classifier -> scalar, the others -> pairwise
READS = None
EXTERNAL = True  # not a training method: never in run.methods
SCORERS = ("classifier", "armo", "custom_forward", "pairwise_pm", "judge_endpoint")
SCALAR_SCORERS = ("classifier", "armo", "custom_forward")
DECLARATION = "external.json"


@dataclass(frozen=True)
class Config:
    """One external reward model."""

    model: str | None = None  # hub id or local directory (not for judge_endpoint)
    revision: str | None = None
    trust_remote_code: bool = False
    scorer: str = "classifier"  # classifier | armo | custom_forward | pairwise_pm | judge_endpoint
    logit: int = 0  # classifier: which output is the reward (several for multi-head models)
    reward_field: str = "score"  # custom_forward: the forward output's field holding the reward (ArmoRM: score)
    rewards_field: str | None = "rewards"  # custom_forward: per-objective rewards, kept for rmflow explain
    max_length: int = 4096  # tokens per scored text, truncated on truncation_side
    truncation_side: str = "left"
    system_turn: str = "template"  # template | merge | error, as for base models
    endpoint: str | None = None  # judge_endpoint: an OpenAI-compatible base URL (.../v1)
    endpoint_model: str = "judge"
    template: str | None = None  # judge_endpoint: a user turn with {question}, {answer_a}, {answer_b}
    # pairwise_pm: where the A/B logits are read; RLHFlow's released pair-preference models are scored by their
    # authors at user_turn_end (the user turn's last token, no assistant header, BOS removed)
    score_position: str = "after_generation_prompt"

    def __post_init__(self):
        if self.scorer not in SCORERS:
            raise ValueError(f"scorer must be one of {SCORERS}, not '{self.scorer}'")
        if self.scorer == "judge_endpoint" and not self.endpoint:
            raise ValueError("a judge_endpoint needs 'endpoint'")
        if self.scorer != "judge_endpoint" and not self.model:
            raise ValueError(f"a {self.scorer} needs 'model' (a hub id or a local directory)")
        if self.logit < 0:
            raise ValueError("logit must be >= 0")
        if self.scorer == "custom_forward" and not self.trust_remote_code:
            raise ValueError("a custom_forward model runs its own code: set trust_remote_code: true on this model "
                             "(it stays off everywhere else)")
        from rmflow.methods.pairwise.pm import check_score_position

        check_score_position(self.score_position)


def kind_of(config: Config) -> str:
    return "scalar" if config.scorer in SCALAR_SCORERS else "pairwise"


def sizing(config: Config) -> dict:
    """rmflow plan: a classifier scores each answer; a pair-preference model reads the pair, in both orders."""
    return {"head": "classifier", "score": "each_answer"} if kind_of(config) == "scalar" else \
        {"head": "lm", "score": "both_orders", "logit_positions": 1}


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    """Nothing is trained: write the declaration the scorer reads, and in rmflow_run.json the released model's hub
    id and the commit its reference resolves to now (scores.json records the commit actually loaded)."""
    import dataclasses

    from rmflow.hub import hub_record
    from rmflow.io import atomic_dir, write_json, write_text

    config = spec.options
    model = hub_record(config.model, config.revision) if config.model else None
    with atomic_dir(out_dir) as tmp:
        write_json(tmp / DECLARATION, asdict(config))
        write_text(tmp / "rmflow_run.json", dataclasses.replace(spec, hub={"model": model} if model else {}).to_json())


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    path = Path(model_dir) / DECLARATION
    if not path.is_file():
        raise RmflowError("not an external reward model declaration (no external.json)", file=str(path))
    return scorer_for(Config(**json.loads(path.read_text(encoding="utf-8"))), device, batch_size)


def scorer_for(config: Config, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    """The scorer a declaration asks for, loaded with rmflow's one model loader."""
    from rmflow.models.load import load_for_scoring, load_tokenizer

    if config.scorer == "judge_endpoint":
        from rmflow.methods.judge import DEFAULT_TEMPLATE, EndpointJudge

        return EndpointJudge(config.endpoint, config.endpoint_model, config.template or DEFAULT_TEMPLATE)
    tokenizer = load_tokenizer(config.model, revision=config.revision, trust_remote_code=config.trust_remote_code,
                               system_turn=config.system_turn)
    common = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
    if config.scorer == "pairwise_pm":
        from rmflow.methods.pairwise.model import PairwiseScorer

        model = load_for_scoring(config.model, tokenizer, auto_class="AutoModelForCausalLM", **common)
        return PairwiseScorer(model, tokenizer, config.max_length, config.truncation_side, batch_size, device,
                              position=config.score_position)
    if config.scorer == "armo":
        from rmflow.models.armo import ArmoRewardModel, gate_pattern
        from rmflow.models.custom_forward import CustomForwardScorer

        model = load_for_scoring(config.model, tokenizer, model_class=ArmoRewardModel, revision=config.revision)
        model.gate_pattern = gate_pattern(tokenizer)
        return CustomForwardScorer(model, tokenizer, "score", "rewards", config.max_length, config.truncation_side,
                                   device)
    if config.scorer == "custom_forward":
        from rmflow.models.custom_forward import CustomForwardScorer

        model = load_for_scoring(config.model, tokenizer, **common)
        return CustomForwardScorer(model, tokenizer, config.reward_field, config.rewards_field, config.max_length,
                                   config.truncation_side, device)
    from rmflow.models.scalar import ScalarScorer

    model = load_for_scoring(config.model, tokenizer, **common)
    if getattr(model, "score", None) is None:
        raise RmflowError(f"'{config.model}' ({type(model).__name__}) has no score head to read a classifier's logit "
                          "from; a model whose forward returns the reward in a field (ArmoRM) is scorer: "
                          "custom_forward", field="scorer")
    outputs = model.config.num_labels
    if config.logit >= outputs:
        raise RmflowError(f"logit {config.logit} asked for, but '{config.model}' has {outputs} output(s)",
                          field="logit")
    return ScalarScorer(model, tokenizer, max_length=config.max_length, truncation_side=config.truncation_side,
                        batch_size=batch_size, device=device, head=config.logit)
