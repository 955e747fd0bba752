"""Decision-tree reward model (methods.md §8): a shallow, readable tree over attribute-reward differences.

Per response, attribute rewards come from the ArmoRM stage-1 probes on the same frozen backbone. A pair becomes
Δ = r̂(chosen) − r̂(rejected) with label 1, and −Δ with label 0 (so the tree sees both orders). Depth is chosen on a
validation split. The recipe's tree is not antisymmetric (P(a ≻ b) + P(b ≻ a) ≠ 1), so scoring averages both orders:
P(chosen) = (t(Δ) + 1 − t(−Δ)) / 2. The tree is saved as JSON plus a text rendering of its rules, never pickle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

log = logging.getLogger(__name__)

VERSION = 1
KIND = "pairwise"

# rmflow plan: the tree compares two answers embedded one at a time by a classifier backbone
SIZING = {"score": "each_answer"}
TREE_FILE, RULES_FILE = "tree.json", "tree_rules.txt"


HELPSTEER2 = ["helpfulness", "correctness", "coherence", "complexity", "verbosity"]


@dataclass(frozen=True)
class Config:
    """Decision-tree options. Attribute probes come from ArmoRM's stage 1 of the same base, or, with
    ``attributes`` set, from the tree's own stage 1 on its own frozen backbone (the seed: HelpSteer2's five
    attributes on Skywork-Reward)."""

    max_depth: int = 4  # depths 1..max_depth are tried; the best on validation wins
    min_samples_leaf: int = 5
    validation_fraction: float = 0.2
    seed: int = 0
    attributes: str | None = None  # data set of attribute rows for the tree's own probes; None = ArmoRM's probes
    backbone: str | None = None  # own probes: the frozen backbone (directory or hub id)
    backbone_revision: str | None = None  # a hub backbone's commit, tag or branch (None: main)
    backbone_method: str = "bt"  # own probes without ``backbone``: the run's model of this method, same base
    objectives: list = field(default_factory=lambda: list(HELPSTEER2))  # own probes: the attributes fitted
    rating_max: float = 4.0  # own probes: ratings 0..rating_max (HelpSteer2: 0..4)
    prescaled: bool = False  # own probes: labels already in [0, 1]


def fit_tree(x, y, config: Config, feature_names: list[str]) -> tuple[dict, str, dict]:
    """Fit trees of depth 1..max_depth, keep the best on validation; return (tree JSON, rule text, report)."""
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier, export_text

    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(y))
    n_val = max(1, int(round(config.validation_fraction * len(y))))
    val, fit = order[:n_val], order[n_val:]
    best = None
    for depth in range(1, config.max_depth + 1):
        clf = DecisionTreeClassifier(criterion="log_loss", max_depth=depth, min_samples_leaf=config.min_samples_leaf,
                                     random_state=config.seed).fit(x[fit], y[fit])
        accuracy = float((clf.predict(x[val]) == y[val]).mean())
        if best is None or accuracy > best[1]:
            best = (clf, accuracy, depth)
    clf, accuracy, depth = best
    return tree_to_json(clf, feature_names), export_text(clf, feature_names=feature_names, decimals=6), {
        "depth": depth, "validation_accuracy": accuracy, "train_rows": len(fit), "validation_rows": len(val)}


def tree_to_json(clf, feature_names: list[str]) -> dict:
    """sklearn's arrays as plain JSON: internal nodes test x[feature] <= threshold; leaves hold P(label 1)."""
    t = clf.tree_
    class_one = list(clf.classes_).index(1) if 1 in clf.classes_ else None
    nodes = []
    for i in range(t.node_count):
        counts = t.value[i][0]
        p = float(counts[class_one] / counts.sum()) if class_one is not None else 0.0
        if t.children_left[i] == -1:
            nodes.append({"leaf": True, "p": p})
        else:
            nodes.append({"leaf": False, "feature": int(t.feature[i]), "threshold": float(t.threshold[i]),
                          "left": int(t.children_left[i]), "right": int(t.children_right[i]), "p": p})
    return {"features": feature_names, "nodes": nodes}


def predict(tree: dict, x) -> list[float]:
    """P(label 1) for each row of x, walking the JSON tree (no sklearn needed at inference)."""
    out = []
    for row in x:
        node = tree["nodes"][0]
        while not node["leaf"]:
            node = tree["nodes"][node["left"] if row[node["feature"]] <= node["threshold"] else node["right"]]
        out.append(node["p"])
    return out


def pair_features(regression, embed_fn, rows: list[dict]):
    """Δ = r̂(chosen) − r̂(rejected) per pair, from stage-1 probes on backbone embeddings."""
    chosen = embed_fn([r["chosen"] for r in rows]) @ regression.T
    rejected = embed_fn([r["rejected"] for r in rows]) @ regression.T
    return chosen - rejected


def main_fit(spec_path: str, backbone: str, stage1_dir: str, data: str, out_dir: str) -> None:
    import numpy as np

    from rmflow.data.prepare import read_pairs
    from rmflow.io import atomic_dir, write_json, write_text
    from rmflow.methods.armo import read_stage1
    from rmflow.methods.frozen.backbone import copy_backbone, embed, load_backbone, probe_hub

    spec = RunSpec.read(spec_path)
    config, train = spec.options, spec.train
    regression, stage1 = read_stage1(stage1_dir, backbone)
    model, tokenizer = load_backbone(backbone, system_turn=spec.system_turn, bf16=train.bf16,
                                     attn_implementation=spec.attn_implementation,
                                     revision=config.backbone_revision)
    delta = pair_features(regression, lambda c: embed(model, tokenizer, c, train.max_length, train.truncation_side),
                          read_pairs(data))
    x = np.concatenate([delta, -delta])
    y = np.concatenate([np.ones(len(delta), dtype=int), np.zeros(len(delta), dtype=int)])
    tree, rules, report = fit_tree(x, y, config, stage1["objectives"])
    log.info("tree depth %d, validation accuracy %.3f\n%s", report["depth"], report["validation_accuracy"], rules)
    with atomic_dir(out_dir) as tmp:
        backbone_revision = copy_backbone(backbone, tmp, revision=config.backbone_revision)
        (tmp / "regression.safetensors").write_bytes((Path(stage1_dir) / "regression.safetensors").read_bytes())
        write_json(tmp / TREE_FILE, {**tree, "max_length": train.max_length,
                                     "truncation_side": train.truncation_side, "backbone": backbone,
                                     "backbone_revision": backbone_revision})
        write_text(tmp / RULES_FILE, rules)
        hub = probe_hub(backbone, config.backbone_revision, backbone_revision, [stage1.get("attributes"), data])
        write_text(tmp / "rmflow_run.json", dataclasses.replace(spec, hub=hub).to_json())
        write_json(tmp / "metrics.json", {**report, "method": "tree", "base": spec.base, "train_pairs": len(delta),
                                          "hub": hub})


class TreeScorer:
    kind = "pairwise"

    def __init__(self, model_dir: str, batch_size: int = SCORE_BATCH_SIZE, device: str | None = None):
        from safetensors.numpy import load_file

        from rmflow.methods.frozen.backbone import load_backbone

        self.model, self.tokenizer = load_backbone(model_dir, device)
        self.regression = load_file(f"{model_dir}/regression.safetensors")["regression"]
        self.tree = json.loads(Path(model_dir, TREE_FILE).read_text())
        self.batch_size = batch_size

    def score_pairs(self, rows: list[dict]) -> dict:
        from rmflow.methods.frozen.backbone import embed

        delta = pair_features(self.regression, lambda c: embed(
            self.model, self.tokenizer, c, self.tree["max_length"], self.tree["truncation_side"],
            batch_size=self.batch_size), rows)
        forward, backward = predict(self.tree, delta), predict(self.tree, -delta)
        p1, p2 = forward, [1 - p for p in backward]
        return {"p_order1": p1, "p_order2": p2, "p_chosen": [(a + b) / 2 for a, b in zip(p1, p2)]}

    @staticmethod
    def summary(scored: dict) -> dict:
        """How far the fitted tree is from antisymmetric: mean |t(Δ) − (1 − t(−Δ))|."""
        gap = [abs(a - b) for a, b in zip(scored["p_order1"], scored["p_order2"])]
        return {"antisymmetry_gap": sum(gap) / max(len(gap), 1)}


def requires(config: Config) -> list[str]:
    """Methods whose outputs this one reads: ArmoRM's stage-1 probes of the same base, or with its own attribute
    data the backbone RM trained in the same run (unless ``backbone`` names one)."""
    if config.attributes is None:
        return ["armo"]
    return [] if config.backbone else [config.backbone_method]


def dataset_options(config: Config) -> dict[str, str]:
    return {"attributes": "attributes"}


def stages(config: Config) -> tuple[str, ...]:
    """Its own probe stage only with attribute data of its own; otherwise it reads ArmoRM's (``requires``)."""
    return ("probe", "fit") if config.attributes else ("fit",)


def stage_inputs(plan, method: str, base: str, config: Config, stage: str) -> dict[str, str]:
    owner = method if config.attributes else "armo"  # ArmoRM's probes of the same base (``requires``)
    if stage == "probe":
        return {"backbone": plan.backbone_of(method, base), "attributes": plan.prepared(config.attributes)}
    return {"backbone": plan.backbone_of(owner, base), "probe": plan.stage_dir(owner, base, "probe"),
            "data": plan.train_data(method, base)}


def run_stage(stage: str, spec_path: str, inputs: dict[str, str], out_dir: str) -> None:
    from rmflow.methods import armo

    if stage == "probe":  # the same ridge probes as ArmoRM's, on the tree's own attribute rows and objectives
        armo.main_stage1(spec_path, inputs["backbone"], inputs["attributes"], out_dir)
    else:
        main_fit(spec_path, inputs["backbone"], inputs["probe"], inputs["data"], out_dir)


def sizing_jobs(plan, base: str, config: Config, builders) -> list:
    """rmflow plan: its own stage 1 (with attribute data of its own), then each preference pair's two answers."""
    embed_job = builders.embed_job
    own = [embed_job(plan, "stage_probe", "tree", base, config.attributes, 1)] if config.attributes else []
    return own + [embed_job(plan, "stage_fit", "tree", base, plan.dataset_of("tree", base), 2)]


def train(spec: RunSpec, out_dir: str, data: str | None = None, init: str | None = None) -> None:
    """Stage-1 probes with ArmoRM's defaults, then the tree, in one process (the workflow uses two rules)."""
    import tempfile

    from rmflow.methods import armo

    if not init:
        raise RmflowError("the decision tree needs a frozen backbone RM: pass --init MODEL_DIR", field="init")
    with tempfile.TemporaryDirectory(dir=Path(out_dir).parent) as scratch:
        armo_spec = Path(scratch) / "armo.json"
        armo_spec.write_text(dataclasses.replace(spec, method="armo",
                                                 options=armo.Config()).to_json())
        tree_spec = Path(scratch) / "tree.json"
        tree_spec.write_text(spec.to_json())
        armo.main_stage1(str(armo_spec), init, armo.prepared_path(armo.Config().attributes), f"{scratch}/stage1")
        main_fit(str(tree_spec), init, f"{scratch}/stage1", data or spec.train_data, out_dir)


def load_scorer(model_dir: str, device: str = "cpu", batch_size: int = SCORE_BATCH_SIZE):
    return TreeScorer(model_dir, batch_size, device)
