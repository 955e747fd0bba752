"""Shared fixtures: tiny data and a tiny model built once per session (helpers.py: what tests import)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import SHARED_DATA, spec_for  # helpers.py holds what tests import; the fixtures are here, spec_for

# Nothing in the suite may reach a hub; a test that tries must fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config, items):
    """A ``shared_data`` test skips, saying why, where the real rows are absent (a user's clone has none)."""
    skip = pytest.mark.skip(reason=f"{SHARED_DATA} is absent (set RMFLOW_SHARED_DATA to the real-row folder)")
    for item in items:
        if "shared_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> dict:
    from rmflow.data.synth import generate

    return generate(seed=0, n_train_per_subset=12, n_test_per_subset=4)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, synthetic) -> Path:
    """A ~50k-parameter Llama-style base with a BPE tokenizer trained on the synthetic corpus."""
    from rmflow.models.tiny import TinySpec, build

    out = tmp_path_factory.mktemp("bases") / "tiny"
    corpus = [m["content"] for r in synthetic["train"] for s in ("chosen", "rejected") for m in r[s]]
    build(TinySpec(family="llama", vocab_size=400, hidden_size=32, intermediate_size=64, num_layers=1,
                   num_heads=2, num_kv_heads=1, max_position_embeddings=512), corpus, out)
    return out


@pytest.fixture(scope="session")
def trained_bt(tmp_path_factory, synthetic, tiny_base) -> Path:
    """A BT model trained for a few steps through the real ``train`` entry point."""
    from rmflow.data.prepare import write_pairs
    from rmflow.methods import bt

    work = tmp_path_factory.mktemp("bt")
    write_pairs(synthetic["train"], work / "train.parquet")
    spec = spec_for("bt", tiny_base, work / "train.parquet", max_steps=6, log_every=2)
    bt.train(spec, str(work / "model"))
    return work / "model"


@pytest.fixture(autouse=True, scope="session")
def _token_cache(tmp_path_factory):
    """Tokenised data sets cached per test session, never in the repository's results/."""
    os.environ.setdefault("RMFLOW_TOKEN_CACHE", str(tmp_path_factory.mktemp("token-cache")))
