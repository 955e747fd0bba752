"""plots: the figures and run_metrics.csv read each model where the plan put it, whatever its method's layout."""

from __future__ import annotations

import json

import polars as pl
import pytest

from rmflow.errors import RmflowError
from rmflow.leaderboard import plots


def _model(directory, losses=None, **metrics):
    directory.mkdir(parents=True)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    if losses is not None:
        (directory / "train_log.jsonl").write_text("".join(json.dumps({"step": i + 1, "loss": loss}) + "\n"
                                                          for i, loss in enumerate(losses)))
    return directory


def test_loss_curves_and_run_metrics_come_from_every_models_own_directory(tmp_path):
    dirs = {("bt", "tiny"): _model(tmp_path / "models/bt/tiny", [0.7, 0.5], final_loss=0.5),
            # a model is read wherever the plan says it is (SSRM's last round stays with its rounds)
            ("armo", "tiny"): _model(tmp_path / "armo/tiny/model", [0.69, 0.4], final_loss=0.4),
            ("ssrm", "tiny"): _model(tmp_path / "ssrm/tiny/iter2/model", [0.6, 0.3], final_loss=0.3),
            ("judge", "tiny"): _model(tmp_path / "judge/tiny/model")}  # trains nothing: no curve
    curves = plots.train_loss(dirs, tmp_path / "loss.png", tmp_path / "loss.svg")
    assert curves == ["armo/tiny", "bt/tiny", "ssrm/tiny"]
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    records = [{"benchmark": "rewardbench_v1", "eval_set": "s", "method": m, "base": "tiny", "score": 0.5,
                "n_examples": 4} for m in ("armo", "bt", "ssrm", "judge")]
    plots.run_metrics(records, dirs, tmp_path / "run_metrics.csv")
    frame = pl.read_csv(tmp_path / "run_metrics.csv")
    losses = dict(zip(frame["model"], frame["final_loss"]))
    assert losses == {"tiny/armo": 0.4, "tiny/bt": 0.5, "tiny/ssrm": 0.3, "tiny/judge": None}


@pytest.mark.parametrize("item", ["bt/tiny", "bt=results/models/bt", "/tiny=x", "bt/=x", "bt/tiny="])
def test_a_malformed_models_item_is_named(item):
    with pytest.raises(RmflowError, match="METHOD/BASE=DIR"):
        plots.parse_model_dirs([item])
