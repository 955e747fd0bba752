"""Training curves in TensorBoard (train.report_to) and nothing extra when tracking is off."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli, spec_for

pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'rmflow[test]')")


def _spec(tmp_path, synthetic, tiny_base, **train):
    from rmflow.data.prepare import write_pairs

    write_pairs(synthetic["train"], tmp_path / "train.parquet")
    spec = spec_for("bt", tiny_base, tmp_path / "train.parquet", max_length=96, train=train)
    (tmp_path / "spec.json").write_text(spec.to_json())
    return tmp_path / "spec.json"


@pytest.mark.slow
def test_tensorboard_event_files_hold_the_logged_loss(tmp_path, synthetic, tiny_base):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec = _spec(tmp_path, synthetic, tiny_base, report_to=["tensorboard"])
    proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "model"), "--tracking-dir",
                   str(tmp_path / "tb"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events, list((tmp_path / "tb").rglob("*"))
    curves = EventAccumulator(str(events[0].parent)).Reload()
    assert {"train/loss", "train/accuracy", "train/lr", "train/tokens_per_s"} <= set(curves.Tags()["scalars"])
    logged = [round(e.value, 5) for e in curves.Scalars("train/loss")]
    history = [round(r["loss"], 5) for r in map(json.loads, (tmp_path / "model/train_log.jsonl").read_text()
                                                   .splitlines())]
    assert [e.step for e in curves.Scalars("train/loss")] == [1, 2, 3, 4] and logged == history
    assert all(e.value > 0 for e in curves.Scalars("train/tokens_per_s"))


@pytest.mark.slow
def test_no_tracker_writes_no_tracking_files(tmp_path, synthetic, tiny_base):
    spec = _spec(tmp_path, synthetic, tiny_base)
    proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "model"), "--tracking-dir",
                   str(tmp_path / "tb"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "tb").exists()


@pytest.mark.slow
def test_unknown_tracker_is_named(tmp_path, synthetic, tiny_base):
    spec = _spec(tmp_path, synthetic, tiny_base, report_to=["mlflow"])
    proc = run_cli("train", "--spec", str(spec), "--out", str(tmp_path / "model"))
    assert proc.returncode == 2 and "field 'train.report_to': unknown tracker(s) ['mlflow']" in proc.stderr
