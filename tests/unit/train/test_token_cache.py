"""Tokenise once per (texts, tokenizer, template, max_length, truncation side): the second job reads the ids."""

from __future__ import annotations

import json
import logging

import pytest

from helpers import spec_for


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RMFLOW_TOKEN_CACHE", str(tmp_path / "tokens"))
    return tmp_path / "tokens"


@pytest.mark.slow
def test_a_second_method_on_the_same_base_reads_the_cached_ids(tmp_path, cache, synthetic, tiny_base, caplog):
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt, odin
    from rmflow.models.load import load_tokenizer
    from rmflow.train.batching import encode

    write_pairs(synthetic["train"][:32], tmp_path / "train.parquet")
    train = {"lr": 1e-3, "max_steps": 1, "per_device_batch": 8, "grad_accum": 1, "max_length": 96}
    caplog.set_level(logging.INFO, logger="rmflow.train.token_cache")
    bt.train(spec_for("bt", tiny_base, tmp_path / "train.parquet", train=train, test_defaults=False),
             str(tmp_path / "bt"))
    assert [r.message for r in caplog.records if "token cache miss" in r.message]
    assert len(list(cache.rglob("*.npz"))) == 2  # chosen and rejected sides
    caplog.clear()
    odin.train(spec_for("odin", tiny_base, tmp_path / "train.parquet", train=train, test_defaults=False),
               str(tmp_path / "odin"))
    hits = [r.message for r in caplog.records if "token cache hit" in r.message]
    assert len(hits) == 2 and not [r for r in caplog.records if "token cache miss" in r.message]
    # the cached ids are the ones tokenising again gives
    from rmflow.train.token_cache import encode_all

    tok = load_tokenizer(str(tiny_base))
    conversations = [r["chosen"] for r in synthetic["train"][:32]]
    assert encode_all(tok, conversations, 96, "left") == [encode(tok, c, 96, "left") for c in conversations]


def test_any_change_to_what_decides_the_ids_is_a_new_entry(cache, synthetic, tiny_base, caplog):
    from rmflow.models.load import load_tokenizer
    from rmflow.train.token_cache import encode_all

    tok = load_tokenizer(str(tiny_base))
    conversations = [r["chosen"] for r in synthetic["train"][:8]]
    caplog.set_level(logging.INFO, logger="rmflow.train.token_cache")
    encode_all(tok, conversations, 64, "left")
    for call in ((tok, conversations, 32, "left"), (tok, conversations, 64, "right"),
                 (tok, conversations[:7], 64, "left")):
        caplog.clear()
        encode_all(*call)
        assert any("token cache miss" in r.message for r in caplog.records), call[2:]
    other = load_tokenizer(str(tiny_base), system_turn="merge")  # another rendering rule
    caplog.clear()
    encode_all(other, conversations, 64, "left")
    assert any("token cache miss" in r.message for r in caplog.records)
    assert len(list(cache.rglob("*.npz"))) == 5


def test_the_fingerprint_follows_the_tokenizer_object_not_its_address(tiny_base):
    # The memo was keyed by id(): a tokenizer loaded after another was freed could get its address and its
    # fingerprint (CI hit it: a "merge" tokenizer read the "template" tokenizer's ids). Changing what decides the ids
    # on one object must change the fingerprint, and a fresh object must not inherit anything.
    from rmflow.models.load import load_tokenizer
    from rmflow.train.token_cache import tokenizer_fingerprint

    tok = load_tokenizer(str(tiny_base))
    first = tokenizer_fingerprint(tok)
    assert tokenizer_fingerprint(tok) == first
    tok.rmflow_system_turn = "merge"
    merged = tokenizer_fingerprint(tok)
    tok.chat_template = (tok.chat_template or "") + "{# another template #}"
    templated = tokenizer_fingerprint(tok)
    tok.add_tokens(["<rmflow-test-token>"])
    assert len({first, merged, templated, tokenizer_fingerprint(tok)}) == 4
    assert tokenizer_fingerprint(load_tokenizer(str(tiny_base))) == first
    assert tokenizer_fingerprint(load_tokenizer(str(tiny_base), system_turn="merge")) == merged


def test_a_damaged_entry_is_ignored_and_rewritten(cache, synthetic, tiny_base, caplog):
    from rmflow.models.load import load_tokenizer
    from rmflow.train.token_cache import encode_all

    tok = load_tokenizer(str(tiny_base))
    conversations = [r["chosen"] for r in synthetic["train"][:4]]
    first = encode_all(tok, conversations, 64, "left")
    (entry,) = cache.rglob("*.npz")
    entry.write_bytes(b"not a zip")
    caplog.set_level(logging.INFO, logger="rmflow.train.token_cache")
    assert encode_all(tok, conversations, 64, "left") == first
    assert any("ignoring unreadable token cache entry" in r.message for r in caplog.records)
    assert json.dumps(encode_all(tok, conversations, 64, "left")) == json.dumps(first)
