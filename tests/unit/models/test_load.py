"""rmflow.models.load: a tokenizer without a pad token gets one (padding changes no score), and a model directory
with unreadable weights is refused naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import run_cli
from rmflow.errors import RmflowError


# ---- a tokenizer with no pad token at all ----------------------------------------------------------------------
@pytest.mark.slow
def test_a_tokenizer_without_any_pad_token_gets_one_and_padding_changes_no_score(tmp_path, trained_bt):
    from transformers import AutoTokenizer

    from rmflow.models.load import NEW_PAD_TOKEN, load_model, load_tokenizer
    from rmflow.models.scalar import ScalarScorer

    shutil.copytree(trained_bt, tmp_path / "m")
    (tmp_path / "m/rmflow_run.json").unlink()
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    tok.pad_token = None
    tok.save_pretrained(tmp_path / "m")
    assert AutoTokenizer.from_pretrained(tmp_path / "m").pad_token is None
    fixed = load_tokenizer(str(tmp_path / "m"))
    assert fixed.pad_token == NEW_PAD_TOKEN and fixed.pad_token_id not in (fixed.eos_token_id, fixed.bos_token_id)
    model = load_model(str(tmp_path / "m"), fixed, num_labels=1)
    assert model.config.pad_token_id == fixed.pad_token_id
    scorer = ScalarScorer(model, fixed, max_length=128, batch_size=8, max_batch_tokens=10 ** 6)
    convs = [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, how are you?"}],
             [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo."}]]
    scorer.batches = lambda lengths, max_padding=0.1: [list(range(len(lengths)))]  # one padded batch
    together = scorer.score_conversations(convs, progress=False)
    alone = [scorer.score_conversations([c], progress=False)[0] for c in convs]
    assert together == pytest.approx(alone, abs=1e-5)


@pytest.mark.slow
def test_a_model_directory_with_unreadable_weights_is_refused_naming_the_file(tmp_path, trained_bt, synthetic):
    """A safetensors file cut short by a full disk, or a shard the index names but the folder lacks: refused before
    anything loads (plan time for a configured base, and at run time), with the file's name; never a traceback."""
    import shutil

    from rmflow.models.load import check_model_ref

    cut = tmp_path / "cut"
    shutil.copytree(trained_bt, cut)
    weights = cut / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4096])
    with pytest.raises(RmflowError, match=r"cut/model.safetensors: weights file is cut short: its tensors need"):
        check_model_ref(str(cut))
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in synthetic["test"][:4]))
    proc = run_cli("evaluate", "--model-dir", str(cut), "--method", "bt", "--data", str(rows), "--sections",
                   "synthetic_v1", "--eval-set", "synthetic", "--base", "tiny", "--out-dir", str(tmp_path / "eval"))
    assert proc.returncode == 2 and "model.safetensors: weights file is cut short" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "eval").exists()
    weights.write_bytes(b"\x10")
    with pytest.raises(RmflowError, match="not even a safetensors header"):
        check_model_ref(str(cut))

    sharded = tmp_path / "sharded"
    shutil.copytree(trained_bt, sharded)
    shards = {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": shards}))
    (sharded / "model.safetensors").rename(sharded / "model-00001-of-00002.safetensors")
    with pytest.raises(RmflowError, match="names model-00002-of-00002.safetensors, which the folder lacks"):
        check_model_ref(str(sharded))
    check_model_ref(str(trained_bt))  # an intact directory passes
