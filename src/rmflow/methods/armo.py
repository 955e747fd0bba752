"""ArmoRM (methods.md §5): multi-objective linear probes on a frozen RM backbone + a prompt-conditioned gate.

Stage ``probe`` (rule stage_probe): embed multi-attribute rows with the frozen backbone (last hidden state at the
last token), fit one ridge regression per objective (α picked on a validation split, missing labels ignored).
Stage ``gate`` (rule stage_gate): embed preference pairs, find verbosity penalties on the reference set and fold them
into the transform T, then train only the gate with the BT loss on score = β Σ_j g_j(x) (T r)_j.
The saved model is the backbone in HF layout plus ``armo_head.safetensors`` and ``armo_config.json``: no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.methods.frozen.backbone import copy_backbone, embed, fingerprint, load_backbone, probe_hub  # noqa: F401 - tree uses them
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

VERSION = 1
KIND = "scalar"
HEAD_FILE, HEAD_CONFIG = "armo_head.safetensors", "armo_config.json"


@dataclass(frozen=True)
class Config:
    """ArmoRM options; gate sizes are scaled down from the recipe's 3 x 1024 for tiny backbones."""

    backbone_method: str = "bt"  # the run's method whose model for the same base is the frozen backbone
    backbone: str | None = None  # or any RM directory / hub id (overrides backbone_method)
    backbone_revision: str | None = None  # a hub backbone's commit, tag or branch (None: main)
    # the gate's prompt feature: after the assistant header, or at the user turn's end-of-turn token (the seed's)
    prompt_position: str = "after_generation_prompt"  # or user_turn_end
    attributes: str = "synthetic_attributes"  # data set of attribute rows (format multi_objective / helpsteer2_...)
    objectives: list = field(default_factory=lambda: ["helpfulness", "correctness", "coherence", "complexity",
                                                      "verbosity", "safety"])
    rating_max: float = 4.0  # ratings 0..rating_max map to (x + 0.5) / (rating_max + 1), HelpSteer's rule
    prescaled: bool = False  # labels already lie in [0, 1] (ArmoRM-Multi-Objective-Data ships them scaled)
    verbosity_objective: str | None = "verbosity"  # None: no verbosity debiasing (data without a verbosity label)
    spearman_threshold: float = 0.028
    validation_fraction: float = 0.2
    gate_hidden: int = 64
    gate_layers: int = 3
    gate_dropout: float = 0.2
    temperature: float = 10.0
    gate_lr: float = 1e-3
    gate_steps: int = 400
    gate_batch: int = 256
    seed: int = 0

    def __post_init__(self):
        from rmflow.methods.pairwise.pm import check_score_position

        check_score_position(self.prompt_position, "prompt_position")
        if self.verbosity_objective is not None and self.verbosity_objective not in self.objectives:
            raise ValueError(f"verbosity_objective '{self.verbosity_objective}' is not among the objectives")


STAGES = ("probe", "gate")


def stage_inputs(plan, method: str, base: str, config: Config, stage: str) -> dict[str, str]:
    """probe: the backbone and the attribute rows; gate: the backbone, the probes and the preference pairs."""
    backbone = plan.backbone_of(method, base)
    if stage == "probe":
        return {"backbone": backbone, "attributes": plan.prepared(config.attributes)}
    return {"backbone": backbone, "probe": plan.stage_dir(method, base, "probe"), "data": plan.train_data(method, base)}


def run_stage(stage: str, spec_path: str, inputs: dict[str, str], out_dir: str) -> None:
    if stage == "probe":
        main_stage1(spec_path, inputs["backbone"], inputs["attributes"], out_dir)
    else:
        main_stage2(spec_path, inputs["backbone"], inputs["probe"], inputs["data"], out_dir)


def requires(config: Config) -> list[str]:
    """Methods whose outputs this one reads: the backbone RM trained in the same run, unless one is given."""
    return [] if config.backbone else [config.backbone_method]


def dataset_options(config: Config) -> dict[str, str]:
    """Data sets named in the options, with their kind: the stage-1 attribute rows."""
    return {"attributes": "attributes"}


def sizing_jobs(plan, base: str, config: Config, builders) -> list:
    """rmflow plan: stage 1 embeds each attribute row, stage 2 each pair's two answers and its prompt."""
    embed_job = builders.embed_job
    return [embed_job(plan, "stage_probe", "armo", base, config.attributes, 1),
            embed_job(plan, "stage_gate", "armo", base, plan.dataset_of("armo", base), 3)]


# ---- stage 1 ----------------------------------------------------------------------------------------------------
def prepared_path(dataset: str) -> str:
    """Outside the workflow a data set option names a prepared file, or the data set whose prepared file the
    workflow writes (results/data/prepared/<name>.parquet)."""
    if Path(dataset).is_file():
        return dataset
    path = Path("results/data/prepared") / f"{dataset}.parquet"
    if not path.is_file():
        raise RmflowError(f"data set '{dataset}' is not prepared: run `rmflow prepare-data` for it (or the workflow's"
                          " prepare_data rule), or name a prepared .parquet file", file=str(path))
    return str(path)



def attribute_matrix(rows: list[dict], config, source: str):
    """Labels (n, objectives) scaled to [0, 1] with NaN where a row has no label; errors name row and field.

    ``config`` is any method config with ``objectives``, ``rating_max`` and ``prescaled`` (ArmoRM, the tree)."""
    import numpy as np

    labels = np.full((len(rows), len(config.objectives)), np.nan)
    for i, row in enumerate(rows):
        where = row.get("__row__", i + 1)
        for key, value in row["attributes"].items():
            if key not in config.objectives:
                if value is None:
                    continue  # a column other rows of the set have; this one leaves it empty
                raise RmflowError(f"unknown attribute '{key}' (objectives: {', '.join(config.objectives)})",
                                  file=source, row=where, field=key)
            if value is None:
                continue
            low, high = (0.0, 1.0) if config.prescaled else (0.0, config.rating_max)
            if not low <= value <= high:
                scale = "a pre-scaled label in [0, 1]" if config.prescaled else f"a rating in 0..{high:g}"
                raise RmflowError(f"is {value:g}, not {scale} or null", file=source, row=where, field=key)
            labels[i, config.objectives.index(key)] = value if config.prescaled else (value + 0.5) / (high + 1)
    for j, name in enumerate(config.objectives):
        if np.isnan(labels[:, j]).all():
            raise RmflowError(f"objective '{name}' has no label in any row", file=source, field=name)
    return labels


def main_stage1(spec_path: str, backbone: str, attributes: str, out_dir: str) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    from rmflow.data.formats import read_prepared
    from rmflow.io import atomic_dir, write_json
    from rmflow.methods.frozen.armo_math import fit_objective

    spec = RunSpec.read(spec_path)
    config, train = spec.options, spec.train
    rows = read_prepared(attributes)
    labels = attribute_matrix(rows, config, attributes)
    model, tokenizer = load_backbone(backbone, system_turn=spec.system_turn, bf16=train.bf16,
                                     attn_implementation=spec.attn_implementation,
                                     revision=config.backbone_revision)
    x = embed(model, tokenizer, [r["messages"] for r in rows], train.max_length, train.truncation_side)
    rng = np.random.default_rng(config.seed)
    weights, report = [], {}
    for j, name in enumerate(config.objectives):
        w, alpha, mse = fit_objective(x, labels[:, j], rng, config.validation_fraction)
        weights.append(w)
        report[name] = {"alpha": alpha, "validation_mse": mse, "labeled_rows": int((~np.isnan(labels[:, j])).sum())}
        log.info("objective %s: alpha %g, validation MSE %.4f", name, alpha, mse)
    with atomic_dir(out_dir) as tmp:
        save_file({"regression": np.stack(weights).astype(np.float32)}, str(tmp / "regression.safetensors"))
        write_json(tmp / "stage1.json", {"objectives": config.objectives, "per_objective": report,
                                         "backbone": backbone, "backbone_fingerprint": fingerprint(backbone),
                                         "rows": len(rows), "attributes": attributes})


def read_stage1(stage1_dir: str, backbone: str):
    """Stage-1 weights, checked to belong to ``backbone``."""
    from safetensors.numpy import load_file

    meta_path = Path(stage1_dir) / "stage1.json"
    if not meta_path.exists():
        raise RmflowError("stage-1 probes are absent: run the probe stage (rule stage_probe) first",
                          file=str(meta_path))
    meta = json.loads(meta_path.read_text())
    if meta["backbone_fingerprint"] != fingerprint(backbone):
        raise RmflowError(f"stage 1 was fitted on backbone '{meta['backbone']}', not on '{backbone}'; rerun stage 1 "
                          "for this backbone", file=str(meta_path), field="backbone")
    return load_file(str(Path(stage1_dir) / "regression.safetensors"))["regression"], meta


# ---- stage 2 ----------------------------------------------------------------------------------------------------
def main_stage2(spec_path: str, backbone: str, stage1_dir: str, data: str, out_dir: str) -> None:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    from rmflow.data.prepare import read_pairs
    from rmflow.io import atomic_dir, write_json, write_text
    from rmflow.methods.frozen.armo_math import gated_score, make_gate, transform_matrix, verbosity_penalties

    spec = RunSpec.read(spec_path)
    config, train = spec.options, spec.train
    regression, stage1 = read_stage1(stage1_dir, backbone)
    if stage1["objectives"] != config.objectives:
        raise RmflowError(f"stage 1 has objectives {stage1['objectives']}, the config {config.objectives}",
                          file=f"{stage1_dir}/stage1.json", field="objectives")
    rows = read_pairs(data)
    model, tokenizer = load_backbone(backbone, system_turn=spec.system_turn, bf16=train.bf16,
                                     attn_implementation=spec.attn_implementation,
                                     revision=config.backbone_revision)
    args = (train.max_length, train.truncation_side)
    prompts = embed(model, tokenizer, [r["chosen"][:-1] for r in rows], *args, generation_prompt=True,
                    position=config.prompt_position)
    chosen = embed(model, tokenizer, [r["chosen"] for r in rows], *args) @ regression.T
    rejected = embed(model, tokenizer, [r["rejected"] for r in rows], *args) @ regression.T
    if config.verbosity_objective is None:  # nothing to debias against: T = I
        lambdas, transform = np.zeros(len(config.objectives)), np.eye(len(config.objectives))
        log.info("no verbosity objective: the transform is the identity (no debiasing)")
    else:
        verbosity = config.objectives.index(config.verbosity_objective)
        # the reference set for debiasing is the preference set itself (the recipe's default)
        lambdas = verbosity_penalties(np.concatenate([chosen, rejected]), verbosity, config.spearman_threshold)
        transform = transform_matrix(lambdas, verbosity)

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(rows))
    n_val = max(1, int(round(config.validation_fraction * len(rows))))
    val, fit = order[:n_val], order[n_val:]
    tensors = {k: torch.tensor(v, dtype=torch.float32) for k, v in
               (("prompt", prompts), ("chosen", chosen), ("rejected", rejected), ("transform", transform))}
    gate = make_gate(prompts.shape[1], len(config.objectives), config.gate_hidden, config.gate_layers,
                     config.gate_dropout)
    beta = torch.nn.Parameter(torch.ones(()))
    optimizer = torch.optim.AdamW(list(gate.parameters()) + [beta], lr=config.gate_lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.gate_steps)

    def scores(idx):
        logits = gate(tensors["prompt"][idx])
        s_c, g = gated_score(logits, tensors["chosen"][idx], tensors["transform"], beta, config.temperature)
        s_r, _ = gated_score(logits, tensors["rejected"][idx], tensors["transform"], beta, config.temperature)
        return s_c, s_r, g

    history = []
    for step in range(1, config.gate_steps + 1):
        gate.train()
        batch = torch.tensor(rng.choice(fit, size=config.gate_batch, replace=True))
        s_c, s_r, _ = scores(batch)
        loss = -torch.nn.functional.logsigmoid(s_c - s_r).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == config.gate_steps:
            history.append({"step": step, "loss": loss.detach().item()})
            log.info("gate step %d/%d loss %.4f", step, config.gate_steps, history[-1]["loss"])
    gate.eval()
    with torch.no_grad():
        accuracy = {name: float((lambda s: (s[0] > s[1]).float().mean())(scores(torch.tensor(idx))))
                    for name, idx in (("train_accuracy", fit), ("validation_accuracy", val))}
    head = {"regression": torch.tensor(regression, dtype=torch.float32), "transform": tensors["transform"],
            "beta": beta.detach().reshape(1)}
    linears = [m for m in gate if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(linears):
        head[f"gate.{i}.weight"], head[f"gate.{i}.bias"] = layer.weight.detach(), layer.bias.detach()
    head_config = {"objectives": config.objectives, "temperature": config.temperature,
                   "gate_layers": len(linears), "verbosity_objective": config.verbosity_objective,
                   "verbosity_penalties": dict(zip(config.objectives, lambdas.tolist())),
                   "rating_max": config.rating_max, "prescaled": config.prescaled,
                   "alphas": {k: v["alpha"] for k, v in stage1["per_objective"].items()},
                   "backbone": backbone, "max_length": train.max_length, "truncation_side": train.truncation_side,
                   "prompt_position": config.prompt_position}
    with atomic_dir(out_dir) as tmp:
        head_config["backbone_revision"] = copy_backbone(backbone, tmp, revision=config.backbone_revision)
        hub = probe_hub(backbone, config.backbone_revision, head_config["backbone_revision"],
                        [stage1.get("attributes"), data])
        save_file({k: v.contiguous() for k, v in head.items()}, str(tmp / HEAD_FILE))
        write_json(tmp / HEAD_CONFIG, head_config)
        write_text(tmp / "rmflow_run.json", dataclasses.replace(spec, hub=hub).to_json())
        write_json(tmp / "metrics.json", {**accuracy, "final_loss": history[-1]["loss"], "train_pairs": len(fit),
                                          "validation_pairs": len(val), "gate_steps": config.gate_steps,
                                          "method": "armo", "base": spec.base, "hub": hub})
        write_text(tmp / "train_log.jsonl", "".join(json.dumps(h) + "\n" for h in history))


# ---- inference --------------------------------------------------------------------------------------------------
class ArmoScorer:
    """Score, per-objective rewards and gating weights of a saved ArmoRM directory."""

    kind = "scalar"

    def __init__(self, model_dir: str, batch_size: int = SCORE_BATCH_SIZE, device: str | None = None):
        import torch
        from safetensors.torch import load_file

        self.model, self.tokenizer = load_backbone(model_dir, device)
        self.head = load_file(f"{model_dir}/{HEAD_FILE}")
        self.meta = json.loads(Path(model_dir, HEAD_CONFIG).read_text())
        self.batch_size = batch_size
        self._torch = torch

    def _gate(self, prompt_embeddings):
        x = prompt_embeddings
        for i in range(self.meta["gate_layers"]):
            x = x @ self.head[f"gate.{i}.weight"].T + self.head[f"gate.{i}.bias"]
            if i < self.meta["gate_layers"] - 1:
                x = self._torch.relu(x)
        return self._torch.softmax(x / self.meta["temperature"], dim=-1)

    def details(self, conversations: list[list[dict]]) -> dict:
        """score, rewards (rating scale), gating weights and per-objective coefficients, one row per conversation."""
        torch = self._torch
        args = (self.meta["max_length"], self.meta["truncation_side"])
        prompt = torch.tensor(embed(self.model, self.tokenizer, [c[:-1] for c in conversations], *args,
                                    generation_prompt=True, batch_size=self.batch_size,
                                    position=self.meta.get("prompt_position")), dtype=torch.float32)
        full = torch.tensor(embed(self.model, self.tokenizer, conversations, *args, batch_size=self.batch_size),
                            dtype=torch.float32)
        rewards = full @ self.head["regression"].T
        gates = self._gate(prompt)
        transform, beta = self.head["transform"], self.head["beta"][0]
        # s = β Σ_j g_j Σ_i T_ji r_i = Σ_i c_i r_i with c_i = β Σ_j g_j T_ji
        coefficients = beta * gates @ transform
        score = (coefficients * rewards).sum(-1)
        if not self.meta.get("prescaled"):  # back to the rating scale (the model card's 5r - 0.5 for HelpSteer)
            rewards = rewards * (self.meta["rating_max"] + 1) - 0.5
        return {"score": score.tolist(), "rewards": rewards.tolist(), "gates": gates.tolist(),
                "coefficients": coefficients.tolist(), "objectives": self.meta["objectives"]}

    def score_conversations(self, conversations: list[list[dict]], progress: bool = True) -> list[float]:
        return self.details(conversations)["score"]

    def score_pairs(self, rows: list[dict]) -> dict:
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    """Both stages in one process (outside the workflow, which runs them as two jobs); needs ``backbone``."""
    import tempfile

    config = spec.options
    backbone = init or config.backbone
    if not backbone:
        raise RmflowError("ArmoRM needs a frozen backbone: set methods.armo.options.backbone (or --init)",
                          field="methods.armo.options.backbone")
    with tempfile.TemporaryDirectory(dir=Path(out_dir).parent) as scratch:
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(spec.to_json())
        main_stage1(str(spec_path), backbone, prepared_path(config.attributes), f"{scratch}/stage1")
        main_stage2(str(spec_path), backbone, f"{scratch}/stage1", data or spec.train_data, out_dir)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return ArmoScorer(model_dir, batch_size, device)


def explain(model_dir: str, conversation: list[dict], top_k: int = 3) -> str:
    """The top-K objectives by |coefficient| for one conversation, as printable lines."""
    out = ArmoScorer(model_dir).details([conversation])
    rows = sorted(zip(out["objectives"], out["coefficients"][0], out["rewards"][0], out["gates"][0]),
                  key=lambda r: -abs(r[1]))
    lines = [f"score {out['score'][0]:+.4f}", f"{'objective':<16}{'coefficient':>12}{'reward':>9}{'gate':>8}"]
    lines += [f"{name:<16}{c:>+12.4f}{r:>9.2f}{g:>8.3f}" for name, c, r, g in rows[:top_k]]
    return "\n".join(lines)
