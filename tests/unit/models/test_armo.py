"""rmflow's implementation of the released ArmoRM (rmflow.models.armo) against the released code itself, on the
rehearsal stand-in, whose modeling_custom.py carries the released file's imports and forward: under transformers 5
that code cannot import at all (LLAMA_INPUTS_DOCSTRING is gone), so the comparison supplies that one name; the
native scorer needs no remote code and gives the same score, per-objective rewards and gate weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, run_cli

ARMO = "RLHFlow/ArmoRM-Llama3-8B-v0.1"
CONVERSATIONS = [
    [{"role": "user", "content": "Add 2 and 3."}, {"role": "assistant", "content": "5"}],
    [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue, the colour of the sky."}],
    # two user turns: the gate reads the last assistant header, not the first
    [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."},
     {"role": "user", "content": "Say bye."}, {"role": "assistant", "content": "Bye!"}],
]


@pytest.fixture(scope="module")
def armo_hub(tmp_path_factory) -> Path:
    """The rehearsal hub holding the ArmoRM stand-in alone (HF_HOME=<it>, offline)."""
    from rmflow.rehearsal import writer

    out = tmp_path_factory.mktemp("armo") / "hub"
    layer = tmp_path_factory.mktemp("armo-config") / "armo.yaml"
    layer.write_text(json.dumps({"run": {"reward_models": ["armo"]}, "reward_models": {"armo": {
        "model": ARMO, "scorer": "armo"}}}))
    writer.main(str(out), [str(REPO / "config/config.yaml"), str(layer)])
    return out


def _snapshot(hub: Path) -> Path:
    repo = hub / "hub" / f"models--{ARMO.replace('/', '--')}"
    return repo / "snapshots" / (repo / "refs/main").read_text().strip()


REMOTE = r'''
import json, sys
import torch
import transformers.models.llama.modeling_llama as llama
from transformers import AutoModelForSequenceClassification, AutoTokenizer

llama.LLAMA_INPUTS_DOCSTRING = ""  # the one name transformers 5 lacks: supplied so the released code can run
path, conversations = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForSequenceClassification.from_pretrained(path, trust_remote_code=True, dtype=torch.float32).eval()
out = []
with torch.no_grad():
    for messages in conversations:  # the model card's usage, one conversation at a time
        ids = tokenizer.apply_chat_template(messages, return_tensors="pt")
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids
        o = model(ids)
        out.append({"score": o.score.float().reshape(-1).tolist(), "rewards": o.rewards.float().reshape(-1).tolist(),
                    "gate": o.gating_output.float().reshape(-1).tolist()})
print(json.dumps(out))
'''


def test_the_native_scorer_equals_the_released_forward_on_the_stand_in(armo_hub):
    import torch

    from rmflow.methods import external

    path = _snapshot(armo_hub)
    # an isolated interpreter: the released code registers its module under transformers' dynamic-module cache
    proc = subprocess.run([sys.executable, "-c", REMOTE, str(path), json.dumps(CONVERSATIONS)], capture_output=True,
                          text=True, timeout=300, env={"HF_HOME": str(armo_hub), "HF_HUB_OFFLINE": "1",
                                                       "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])

    scorer = external.scorer_for(external.Config(model=str(path), scorer="armo"))  # the snapshot's folder
    assert not scorer.model.config.to_dict().get("trust_remote_code")
    ours = scorer.details(CONVERSATIONS)
    for mine, released in zip(ours, theirs):
        assert mine["score"] == pytest.approx(released["score"][0], abs=1e-5)
        assert mine["rewards"] == pytest.approx(released["rewards"], abs=1e-5)
    gates = [scorer.model(input_ids=torch.tensor([_ids(scorer, c)])).gating_output.reshape(-1).tolist()
             for c in CONVERSATIONS]
    for mine, released in zip(gates, theirs):
        assert mine == pytest.approx(released["gate"], abs=1e-5)
    assert len({round(r["score"], 6) for r in ours}) == 3  # the weights are not degenerate: the test can fail


def _ids(scorer, conversation):
    from rmflow.train.batching import encode

    return encode(scorer.tokenizer, conversation, scorer.max_length, scorer.truncation_side)


def test_the_gate_reads_the_last_assistant_header_and_the_reward_the_last_real_token():
    import torch

    from rmflow.errors import RmflowError
    from rmflow.models.armo import last_occurrence

    assert last_occurrence([5, 1, 2, 9, 1, 2, 7], [1, 2]) == 4
    with pytest.raises(RmflowError, match="does not occur"):
        last_occurrence([5, 6], [1, 2])
    # the reward position: argmax(ids == pad) - 1 modulo the length, i.e. the last token of an unpadded row
    ids = torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
    last = (torch.eq(ids, 0).int().argmax(-1) - 1) % ids.shape[-1]
    assert last.tolist() == [2, 4]


def test_the_paper_recipe_scores_the_stand_in_with_the_real_imports_without_remote_code(armo_hub, tmp_path):
    """config/paper.yaml's declaration of the released ArmoRM evaluates on the stand-in through the CLI; declared the
    old way (its own code), the same model is a named error, exit 2, nothing written."""
    import yaml

    from rmflow.methods import external

    declared = yaml.safe_load((REPO / "config/paper.yaml").read_text())["reward_models"]["armo_llama3_8b"]
    assert declared["scorer"] == "armo" and not declared.get("trust_remote_code")
    config = external.Config(**declared)
    assert config.model == ARMO
    rows = tmp_path / "eval.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "subset": "alpacaeval-easy", "prompt": c[0]["content"],
                                        "chosen": c[1]["content"], "rejected": "No."}) + "\n"
                            for i, c in enumerate(CONVERSATIONS[:2])))
    env = {"HF_HOME": str(armo_hub), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "ok"
    proc = run_cli("evaluate", "--external", ARMO, "--scorer", "armo", "--data", str(rows), "--eval-set", "rb",
                   "--base", "armo", "--out-dir", str(out), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "scores.json").read_text())["n_examples"] == 2

    bad = tmp_path / "remote"
    proc = run_cli("evaluate", "--external", ARMO, "--scorer", "custom_forward", "--trust-remote-code", "--data",
                   str(rows), "--eval-set", "rb", "--base", "armo", "--out-dir", str(bad), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not bad.exists(), proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert ARMO in line and "LLAMA_INPUTS_DOCSTRING" in line and "transformers 5." in line, line
    assert "scorer: armo" in line
