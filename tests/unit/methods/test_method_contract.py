"""The contract every registered training method keeps, checked the same way for each (one parametrized test).

A method module is one file plus one config entry; what the rest of rmflow relies on is that, for any of them:
its Config builds from defaults alone, its train() learns on the tiny base from rows of the kind it READS (through
its own transform when it has one), what it writes is a standard Hugging Face directory (config.json, safetensors,
no pickles) beside rmflow_run.json and metrics.json, that directory reloads in plain transformers with
trust_remote_code off, a frozen-backbone method leaves the backbone's weights as they were while every other one
changes some, and its scorer returns one value per row in every array. Per-method numbers live in each method's own
test file; this one catches a method that drifts from the protocol the plan, the rules and evaluate assume.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import prepared, spec_for
from rmflow import methods

TRAINED = [name for name in methods.available()
           if not methods.hook(methods.get(name), "EXTERNAL", False)
           and not methods.hook(methods.get(name), "SETUP_ONLY", False)]
# how each kind of training row is made from the synthetic suite (the workflow's prepare_data, in process)
ROWS = {"pairs": ("train", "standard", None), "steps": ("steps", "step_rows", {"split": "train"})}
# a method with rules of its own makes its training rows there: SSRM's split rule (labeled PM rows, the round-0 data)
OWN_DATA_STEP = {"ssrm": lambda module, rows, config: module.split(rows, config)[0]}


def _tensors(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for path in sorted(model_dir.glob("*.safetensors")):
        out.update({f"{path.name}:{k}" if path.name != "model.safetensors" else k: v
                    for k, v in load_file(path).items()})
    return out


def test_every_training_method_is_covered_and_every_listed_kind_is_known():
    assert {"bt", "pair_pm", "ssrm", "rrm", "odin", "armo", "tree", "prm", "orm", "orm_scalar"} <= set(TRAINED)
    assert {methods.hook(methods.get(m), "READS", "pairs") for m in TRAINED} <= set(ROWS)
    own_rules = {m for m in TRAINED if methods.has_hook(methods.get(m), "final_model_dir")}
    assert own_rules == set(OWN_DATA_STEP), "a method with rules of its own needs its data step here"


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED)
def test_a_method_trains_saves_reloads_and_scores_as_the_protocol_says(name, tmp_path, monkeypatch, synthetic,
                                                                      tiny_base, trained_bt):
    import torch
    import transformers

    from rmflow.data.prepare import read_pairs
    from rmflow.methods._io import write_rows

    module = methods.get(name)
    defaults = methods.method_config(name, {})  # a Config from defaults alone
    assert type(defaults) is module.Config

    monkeypatch.chdir(tmp_path)  # ArmoRM's probes read the default attributes set where the workflow prepares it
    Path("results/data/prepared").mkdir(parents=True)
    prepared(Path("results/data/prepared/synthetic_attributes.parquet"), synthetic["attributes"], "multi_objective")
    source, fmt, where = ROWS[methods.hook(module, "READS", "pairs")]
    data = prepared(tmp_path / "train.parquet", synthetic[source], fmt, where=where)
    frozen = "backbone" in defaults.__dataclass_fields__  # ArmoRM and the tree: a frozen backbone RM
    options = {"backbone": str(trained_bt)} if frozen else {}
    spec = spec_for(name, trained_bt if frozen else tiny_base, data, max_steps=3, max_length=256, options=options)
    if methods.has_hook(module, "transform") or name in OWN_DATA_STEP:
        config = spec.options
        assert type(config) is module.Config  # the spec holds the method's options parsed, not a dict
        if name in OWN_DATA_STEP:
            rows = OWN_DATA_STEP[name](module, read_pairs(str(data)), config)
        else:
            rows, counts = module.transform(read_pairs(str(data)), config)
            assert counts
        data = tmp_path / "transformed.parquet"
        write_rows(rows, data)
        assert rows
    out = tmp_path / "model"
    module.train(spec, str(out), data=str(data), init=str(trained_bt) if frozen else None)

    # a standard HF directory, rmflow's records beside it, no pickled weights
    assert (out / "config.json").is_file() and list(out.glob("*.safetensors"))
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt")) and not list(out.glob("*.pkl"))
    assert json.loads((out / "rmflow_run.json").read_text())["method"] == name
    assert json.loads((out / "metrics.json").read_text())

    # plain transformers reloads it, with trust_remote_code off
    config = transformers.AutoConfig.from_pretrained(out, trust_remote_code=False)
    model_class = getattr(transformers, config.architectures[0])
    model = model_class.from_pretrained(out, trust_remote_code=False)
    assert sum(p.numel() for p in model.parameters()) > 0

    # it learned: a frozen backbone is untouched and new weights sit beside it; otherwise some weight moved
    start, end = _tensors(trained_bt if frozen else tiny_base), _tensors(out)
    shared = sorted(set(start) & set(end))
    assert shared, "no weight of the starting model found in the saved one"
    moved = [k for k in shared if start[k].shape != end[k].shape or not torch.equal(start[k], end[k])]
    if frozen:
        assert not moved, f"{name} moved its frozen backbone: {moved[:5]}"
        assert set(end) - set(start), f"{name} saved nothing it learned"
    else:
        assert moved, f"{name} trained without changing a weight"

    # its scorer returns one value per row, whatever the arrays are called
    rows = synthetic["train"][:5]  # canonical rows (chosen and rejected as conversations), as evaluate passes them
    scores = module.load_scorer(str(out), batch_size=2).score_pairs(rows)
    assert scores and all(len(values) == len(rows) for values in scores.values())
