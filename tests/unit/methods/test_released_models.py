"""Released reward models scored as their authors score them, on tiny stand-ins of the same structure: ArmoRM's
custom code (a config auto_map to a modelling file of the repository, a forward output with score, rewards and the
gate's weights), refused unless that model alone turns trust_remote_code on."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from helpers import run_cli
from rmflow.errors import RmflowError

MODELING = '''
from dataclasses import dataclass

import torch
from transformers import LlamaModel, LlamaPreTrainedModel
from transformers.utils import ModelOutput


@dataclass
class GatedRewardOutput(ModelOutput):
    rewards: torch.FloatTensor = None
    gating_output: torch.FloatTensor = None
    score: torch.FloatTensor = None


class TinyRewardModelWithGating(LlamaPreTrainedModel):
    """ArmoRM's shape: per-objective rewards at the last token, a prompt-conditioned gate, score = gated sum."""

    def __init__(self, config):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.regression_layer = torch.nn.Linear(config.hidden_size, config.num_objectives, bias=False)
        self.gating = torch.nn.Linear(config.hidden_size, config.num_objectives)
        self.post_init()

    def forward(self, input_ids, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rewards = self.regression_layer(hidden[:, -1])
        gates = torch.softmax(self.gating(hidden[:, 0]), dim=-1)
        return GatedRewardOutput(rewards=rewards, gating_output=gates, score=(rewards * gates).sum(-1, keepdim=True))
'''


@pytest.fixture(scope="module")
def gated_rm(tmp_path_factory, tiny_base) -> Path:
    """A tiny stand-in of RLHFlow/ArmoRM-Llama3-8B-v0.1's repository: weights, config with auto_map, its code."""
    import torch
    from transformers import AutoConfig

    out = tmp_path_factory.mktemp("released") / "gated"
    shutil.copytree(tiny_base, out, ignore=shutil.ignore_patterns("*.safetensors", "config.json"))
    (out / "modeling_tiny_gated.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location("modeling_tiny_gated", out / "modeling_tiny_gated.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["modeling_tiny_gated"] = module
    spec.loader.exec_module(module)
    config = AutoConfig.from_pretrained(tiny_base)
    config.num_objectives = 3
    config.auto_map = {"AutoModelForSequenceClassification": "modeling_tiny_gated.TinyRewardModelWithGating"}
    torch.manual_seed(0)
    module.TinyRewardModelWithGating(config).save_pretrained(out)
    return out


def test_custom_forward_gives_the_authors_score_and_keeps_the_objectives(gated_rm, synthetic):
    """The model card's usage: model(tokenizer.apply_chat_template(messages, return_tensors="pt")).score."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import external

    conversations = [r["chosen"] for r in synthetic["train"][:4]]
    scorer = external.scorer_for(external.Config(model=str(gated_rm), scorer="custom_forward",
                                                 trust_remote_code=True))
    ours = scorer.score_conversations(conversations, progress=False)
    tokenizer = AutoTokenizer.from_pretrained(gated_rm)
    model = AutoModelForSequenceClassification.from_pretrained(gated_rm, trust_remote_code=True).eval()
    theirs = []
    with torch.no_grad():
        for messages in conversations:
            encoded = tokenizer.apply_chat_template(messages, return_tensors="pt")
            ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
            theirs.append(model(ids).score.float().item())
    assert ours == pytest.approx(theirs, abs=1e-6)
    details = scorer.details(conversations[:1])
    assert details[0]["score"] == pytest.approx(theirs[0], abs=1e-6) and len(details[0]["rewards"]) == 3


@pytest.mark.slow
def test_custom_code_is_refused_without_trust_remote_code_on_that_model(gated_rm, synthetic, tmp_path):
    rows = tmp_path / "eval.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in synthetic["test"][:4]))
    out = tmp_path / "eval"
    proc = run_cli("evaluate", "--external", str(gated_rm), "--data", str(rows), "--sections", "synthetic_v1",
                   "--eval-set", "synthetic", "--base", "armo", "--out-dir", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and not out.exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert "field 'trust_remote_code'" in line and "ships its own modelling code for " \
        "AutoModelForSequenceClassification (modeling_tiny_gated.TinyRewardModelWithGating" in line
    assert "trust_remote_code: true (never globally)" in line
    proc = run_cli("evaluate", "--external", str(gated_rm), "--scorer", "custom_forward", "--data", str(rows),
                   "--sections", "synthetic_v1", "--eval-set", "synthetic", "--base", "armo", "--out-dir", str(out))
    assert proc.returncode == 2 and "set trust_remote_code: true on this model" in proc.stderr
    assert not out.exists()
    # with its code allowed but declared a classifier, it is told which scorer fits instead of a traceback
    proc = run_cli("evaluate", "--external", str(gated_rm), "--trust-remote-code", "--data", str(rows),
                   "--sections", "synthetic_v1", "--eval-set", "synthetic", "--base", "armo", "--out-dir", str(out))
    assert proc.returncode == 2 and "is scorer: custom_forward" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("evaluate", "--external", str(gated_rm), "--trust-remote-code", "--scorer", "custom_forward",
                   "--data", str(rows), "--sections", "synthetic_v1", "--eval-set", "synthetic", "--base", "armo",
                   "--out-dir", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["kind"] == "scalar" and scores["n_examples"] == 4


def test_a_plain_model_still_loads_without_trust_remote_code(tiny_base):
    from rmflow.methods import external

    scorer = external.scorer_for(external.Config(model=str(tiny_base), scorer="pairwise_pm"))
    assert scorer.compare([([{"role": "user", "content": "q"}], "a", "b")], progress=False)["p_chosen"]


def test_the_published_block_gives_the_differences_and_whether_they_lie_in_our_interval(tmp_path):
    """Hand-made numbers: ours 84.0 [82.0, 86.0] on Score against a published 83.6 is inside (+0.4); Chat Hard 60.0
    [58.0, 62.0] against 65.1 is a real gap (-5.1); Prior Sets has no number on our side and no row."""
    from rmflow.leaderboard import published

    table = tmp_path / "published.yaml"
    table.write_text("- model: sfairXC/FsfairX-LLaMA3-RM-v0.1\n  benchmark: rewardbench_v1\n"
                     "  numbers: {Score: 83.6, Chat Hard: 65.1, Prior Sets: 74.9}\n  source: the seed's README\n")
    board = [{"Benchmark": "rewardbench_v1", "Eval Set": "rewardbench", "Model": "fsfairx (external)",
              "Score": 84.0, "Score_lo": 82.0, "Score_hi": 86.0, "Chat Hard": 60.0, "Chat Hard_lo": 58.0,
              "Chat Hard_hi": 62.0, "Prior Sets": None},
             {"Benchmark": "rewardbench_v1", "Eval Set": "rewardbench", "Model": "llama3/bt", "Score": 80.0}]
    rows = published.published_rows(board, {"fsfairx (external)": "sfairXC/FsfairX-LLaMA3-RM-v0.1"},
                                    published.load_published(table))
    assert [(r["Number"], r["Ours"], r["Published"], r["Difference"], r["Inside Interval"]) for r in rows] == [
        ("Score", 84.0, 83.6, 0.4, True), ("Chat Hard", 60.0, 65.1, -5.1, False)]
    text = published.markdown(rows)
    assert "| fsfairx (external) | rewardbench | Score | 84.0 [82.0, 86.0] | 83.6 | +0.4 | yes |" in text
    assert "| Chat Hard | 60.0 [58.0, 62.0] | 65.1 | -5.1 | **no** |" in text
    # a published number rounded to one decimal just outside the interval still counts as inside
    edge = [{**board[0], "Score": 84.0, "Score_lo": 83.64, "Score_hi": 86.0}]
    assert published.published_rows(edge, {"fsfairx (external)": "sfairXC/FsfairX-LLaMA3-RM-v0.1"},
                                    published.load_published(table))[0]["Inside Interval"] is True
    (tmp_path / "bad.yaml").write_text("- model: x\n  benchmark: rewardbench_v3\n  numbers: {Score: 1}\n  source: s\n")
    with pytest.raises(RmflowError, match="bad.yaml:1: field 'benchmark': benchmark must be one of"):
        published.load_published(tmp_path / "bad.yaml")


def test_the_repository_table_cites_every_entry_and_matches_the_seeds_arithmetic():
    """The published v1 Scores are (four sections + 0.5 x Prior Sets) / 4.5, or the mean of four without prior sets
    (RewardBench's rule): each entry with sections reproduces its Score to the display rounding."""
    from helpers import REPO
    from rmflow.leaderboard import published

    for entry in published.load_published(REPO / "config/published.yaml"):
        n = entry["numbers"]
        sections = [n.get(s) for s in ("Chat", "Chat Hard", "Safety", "Reasoning")]
        if entry["benchmark"] == "rewardbench_v1" and None not in sections:
            prior = n.get("Prior Sets")
            score = (sum(sections) + 0.5 * prior) / 4.5 if prior is not None else sum(sections) / 4
            assert abs(score - n["Score"]) <= 0.06, entry["model"]
        elif entry["benchmark"] == "rewardbench_v2" and len(n) == 7:
            assert abs(sum(v for k, v in n.items() if k != "Score") / 6 - n["Score"]) <= 0.06, entry["model"]
