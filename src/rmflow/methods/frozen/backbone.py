"""Frozen backbones of the probe methods (ArmoRM, the decision tree): loading one, by local directory or hub id
(copied from the Hugging Face cache into the saved model), and its last-layer embeddings at the positions the
seed reads."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE

log = logging.getLogger(__name__)


def load_backbone(ref: str, device: str | None = None, system_turn: str | None = None, bf16: bool | None = None,
                  attn_implementation: str | None = None, revision: str | None = None):
    """The frozen backbone for embeddings (inference only: bf16 on a GPU when asked or recorded; the base's
    attention implementation, or the one a saved model recorded)."""
    from rmflow.models.load import default_device, load_for_scoring, load_tokenizer

    tokenizer = load_tokenizer(ref, system_turn=system_turn, revision=revision)
    model = load_for_scoring(ref, tokenizer, bf16=bf16, attn_implementation=attn_implementation, revision=revision)
    return model.to(device or default_device()), tokenizer


def embed(model, tokenizer, conversations: list[list[dict]], max_length: int, truncation_side: str,
          generation_prompt: bool = False, batch_size: int = SCORE_BATCH_SIZE, position: str | None = None):
    """Last-layer hidden state at the last token of each conversation (of its prompt, with ``generation_prompt``).
    ``position`` user_turn_end reads a prompt at the end-of-turn token of its last turn instead, as the seed's
    gate does (``train.batching.encode_user_turn_end``)."""
    from rmflow.methods.pairwise.pm import USER_TURN_END
    from rmflow.train.batching import encode_user_turn_end
    from rmflow.train.token_cache import encode_all

    if position == USER_TURN_END:
        encoded = [encode_user_turn_end(tokenizer, c, max_length, truncation_side, keep_bos=True,
                                        keep_trailing_whitespace=False) for c in conversations]
    else:
        encoded = encode_all(tokenizer, conversations, max_length, truncation_side, generation_prompt)
    return embed_ids(model, tokenizer, encoded, batch_size)


def token_budget_batches(lengths: list[int], batch_size: int, max_batch_tokens: int) -> list[list[int]]:
    """Indices sorted by length, cut at ``batch_size`` rows or ``max_batch_tokens`` padded tokens, so the longest
    texts (last) go in smaller batches: memory is bounded by the budget, not by batch_size x max_length."""
    out, current = [], []
    for i in sorted(range(len(lengths)), key=lambda j: lengths[j]):
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > max_batch_tokens):
            out.append(current)
            current = []
        current.append(i)
    return out + [current] if current else out


def embed_ids(model, tokenizer, encoded: list[list[int]], batch_size: int = SCORE_BATCH_SIZE,
              max_batch_tokens: int = 8192):
    """The embeddings of ``encoded``. Inside ``checkpoint_directory`` (the stage command's --checkpoint-dir) a set
    of more than ``EMBED_CHUNK`` texts is embedded chunk by chunk, each chunk saved there (safetensors) as soon as
    it exists, and a rerun of the same texts with the same model loads the saved chunks instead of recomputing them:
    ArmoRM's gate and the tree on a set of 100K-1M pairs outlast a job's time limit."""
    import numpy as np

    from rmflow.train.checkpoint import active_directory

    directory = active_directory()
    if directory is None or len(encoded) <= EMBED_CHUNK:
        return _embed_batches(model, tokenizer, encoded, batch_size, max_batch_tokens)
    from safetensors.numpy import load_file, save_file

    from rmflow.io import atomic_path

    folder = Path(directory) / f"embed-{_embedding_key(model, encoded)}"
    parts = []
    chunks = range(0, len(encoded), EMBED_CHUNK)
    for k, start in enumerate(chunks):
        path = folder / f"chunk-{k:05d}.safetensors"
        if path.is_file():
            try:
                parts.append(load_file(str(path))["embeddings"])
                log.info("embeddings of texts %d-%d read from %s", start, start + EMBED_CHUNK - 1, path)
                continue
            except Exception as exc:  # noqa: BLE001 - a damaged chunk is recomputed, never used
                log.warning("%s is not readable (%s): embedding that chunk again", path, exc)
        part = _embed_batches(model, tokenizer, encoded[start:start + EMBED_CHUNK], batch_size, max_batch_tokens)
        with atomic_path(path) as tmp:
            save_file({"embeddings": part}, str(tmp))
        log.info("embedded chunk %d of %d (texts %d-%d); kept in %s", k + 1, len(chunks), start,
                 start + len(part) - 1, path)
        parts.append(part)
    return np.concatenate(parts)


# texts embedded between two saves: 20K texts of ~500 tokens on an 8B backbone are ~20 minutes of an A100
EMBED_CHUNK = 20_000


def _embedding_key(model, encoded: list[list[int]]) -> str:
    """What saved chunks belong to: the model (its path, size and dtype) and every token id embedded."""
    import hashlib

    digest = hashlib.sha256()
    digest.update(f"{model.config._name_or_path}:{model.config.hidden_size}:{model.dtype}".encode())
    for ids in encoded:
        digest.update(len(ids).to_bytes(4, "little"))
        digest.update(b"".join(int(i).to_bytes(4, "little") for i in ids))
    return digest.hexdigest()[:24]


def _embed_batches(model, tokenizer, encoded: list[list[int]], batch_size: int, max_batch_tokens: int):
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from rmflow.models.scalar import hidden_at_last
    from rmflow.train.batching import pad

    out = np.zeros((len(encoded), model.config.hidden_size), dtype=np.float64)
    with torch.inference_mode():
        for idx in tqdm(token_budget_batches([len(e) for e in encoded], batch_size, max_batch_tokens), desc="embed",
                        unit="batch"):
            ids, mask = pad([encoded[i] for i in idx], tokenizer.pad_token_id)
            device = next(model.parameters()).device
            out[idx] = hidden_at_last(model, ids.to(device), mask.to(device)).double().cpu().numpy()
    return out


# the files a model directory needs; a hub repository may also hold .bin/.pth duplicates, GGUF files, images
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "tokenizer*"]


def copy_backbone(backbone: str, out_dir: Path, revision: str | None = None) -> str | None:
    """Copy the backbone's HF files (weights, config, tokenizer), without its own training records, into
    ``out_dir``; return the hub commit they came from (None for a local directory).

    A hub id (``sfairXC/FsfairX-LLaMA3-RM-v0.1``) is resolved to its snapshot in the Hugging Face cache, where the
    stage-1 job's load already put it (downloaded now when online and missing). Files are streamed and symlinks
    followed: a cache snapshot holds links to its blobs."""
    import shutil

    from rmflow.hub import looks_local

    commit = None
    if looks_local(backbone):
        source = Path(os.path.expanduser(backbone))
        if not source.is_dir():
            raise RmflowError("backbone directory does not exist", file=backbone)
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        from rmflow.hub import go_offline_if_unreachable

        go_offline_if_unreachable()
        try:
            source = Path(snapshot_download(backbone, revision=revision, allow_patterns=MODEL_FILES))
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
            raise RmflowError(f"cannot resolve backbone '{backbone}' (revision {revision or 'main'}) on the hub or "
                              f"in the Hugging Face cache: {type(exc).__name__}: {exc}") from exc
        commit = source.name  # a snapshot folder is named by its commit
    for f in sorted(source.iterdir()):
        if f.is_file() and f.name not in ("rmflow_run.json", "metrics.json", "train_log.jsonl"):
            shutil.copyfile(f, out_dir / f.name)
    return commit


def probe_hub(backbone: str, revision: str | None, commit: str | None, data_files: list[str | None]) -> dict:
    """The hub record of a probe model (ArmoRM, the tree) for rmflow_run.json / metrics.json: ``base`` = the frozen
    backbone its features come from (a hub id's commit, or the hub base a local rmflow-trained backbone recorded),
    ``train_data`` = the hub data sets behind its attribute rows and preference pairs."""
    import json

    from rmflow.hub import hub_record
    from rmflow.train.save import data_hub

    hub = {}
    base = hub_record(backbone, revision, commit=commit)
    recorded = Path(os.path.expanduser(backbone), "rmflow_run.json")
    if base is None and recorded.is_file():
        base = (json.loads(recorded.read_text(encoding="utf-8")).get("hub") or {}).get("base")
    if base:
        hub["base"] = base
    data = [record for path in data_files for record in (data_hub(path) or [])]
    if data:
        hub["train_data"] = list({json.dumps(r, sort_keys=True): r for r in data}.values())
    return hub


def fingerprint(ref: str) -> str:
    """A cheap identity of a model directory: config, file names and sizes, and the first 64 KiB of weights."""
    import hashlib

    path, digest = Path(ref), hashlib.sha256()
    if not path.is_dir():
        return f"hub:{ref}"
    for f in sorted(path.iterdir()):
        if f.name == "config.json" or f.suffix == ".safetensors":
            digest.update(f.name.encode())
            digest.update(str(f.stat().st_size).encode())
            with f.open("rb") as fh:
                digest.update(fh.read(65536))
    return digest.hexdigest()
