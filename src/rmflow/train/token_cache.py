"""Tokenise a data set once per (texts, tokenizer, chat template, system-turn rule, max_length, truncation side):
a content-addressed cache every method and every evaluation of the same base reads.

The key is a SHA-256 of everything the ids depend on, so a changed tokenizer, template, length limit or data set is
a new key and nothing stale is ever read. Entries live in ``results/scratch/tokens/`` (outside every rule's
outputs, so Snakemake never deletes them; ``$RMFLOW_TOKEN_CACHE`` moves them, ``off`` turns the cache off) as one
``.npz`` of concatenated ids and offsets, written atomically; a damaged entry is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

VERSION = 1  # bump when encode() changes what it returns for the same inputs
_VOCAB_DIGEST = "_rmflow_vocab_digest"


def cache_dir() -> Path:
    return Path(os.environ.get("RMFLOW_TOKEN_CACHE", "results/scratch/tokens"))


def _vocab_digest(tokenizer) -> str:
    """The costly part (the full serialisation: vocabulary, merges, added tokens such as rmflow's [PAD]), memoised
    on the tokenizer object itself: a memo keyed by id() handed a freed tokenizer's digest to the next one that got
    its address, so another template or system-turn rule read the first one's cached ids."""
    cached = getattr(tokenizer, _VOCAB_DIGEST, None)
    if cached:
        return cached
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    digest = hashlib.sha256(text.encode()).hexdigest()
    try:
        setattr(tokenizer, _VOCAB_DIGEST, digest)
    except AttributeError:  # a tokenizer that takes no attributes is serialised every time
        pass
    return digest


def tokenizer_fingerprint(tokenizer) -> str:
    """Everything of a tokenizer that decides ids: its serialisation, the chat template, the special tokens and the
    system-turn rule. Only the serialisation is memoised; the rest (and the vocabulary's size) is read on every call,
    so a template, rule or added token on the same object is a new fingerprint."""
    digest = hashlib.sha256()
    digest.update(_vocab_digest(tokenizer).encode())
    digest.update(str(len(tokenizer)).encode())  # a token added after the memo is a new fingerprint
    digest.update(str(tokenizer.chat_template).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True).encode())
    digest.update(getattr(tokenizer, "rmflow_system_turn", "template").encode())
    return digest.hexdigest()


def cache_key(tokenizer, conversations: list[list[dict]], max_length: int, truncation_side: str,
              generation_prompt: bool) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([VERSION, tokenizer_fingerprint(tokenizer), max_length, truncation_side,
                              generation_prompt]).encode())
    for conversation in conversations:
        digest.update(json.dumps([[m["role"], m["content"]] for m in conversation]).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _read(path: Path) -> list[list[int]] | None:
    import numpy as np

    try:
        with np.load(path) as data:
            ids, offsets = data["ids"], data["offsets"]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        log.warning("ignoring unreadable token cache entry %s (%s)", path, exc)
        return None
    return [ids[offsets[i]:offsets[i + 1]].tolist() for i in range(len(offsets) - 1)]


def _write(path: Path, encoded: list[list[int]]) -> None:
    import numpy as np

    from rmflow.io import atomic_path

    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    ids = np.fromiter((t for e in encoded for t in e), dtype=np.int64, count=int(offsets[-1]))
    try:
        with atomic_path(path, output=False) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, ids=ids, offsets=offsets)
    except RmflowError as exc:  # a cache that cannot be written only costs time: say so, go on without it
        log.warning("token cache not written (%s); continuing without it", exc)


def encode_all(tokenizer, conversations: list[list[dict]], max_length: int, truncation_side: str,
               generation_prompt: bool = False, desc: str = "tokenize") -> list[list[int]]:
    """``encode`` for every conversation, read from the cache when the same tokenisation was done before."""
    from tqdm.auto import tqdm

    from rmflow.train.batching import encode

    if not conversations:
        return []
    if os.environ.get("RMFLOW_TOKEN_CACHE") == "off":  # a server: each request's few texts, never read again
        return [encode(tokenizer, c, max_length, truncation_side, generation_prompt) for c in conversations]
    key = cache_key(tokenizer, conversations, max_length, truncation_side, generation_prompt)
    path = cache_dir() / key[:2] / f"{key}.npz"
    if path.exists():
        encoded = _read(path)
        if encoded is not None and len(encoded) == len(conversations):
            log.info("token cache hit: %d conversations read from %s", len(encoded), path)
            return encoded
    encoded = [encode(tokenizer, c, max_length, truncation_side, generation_prompt)
               for c in tqdm(conversations, desc=desc, unit="text")]
    try:
        _write(path, encoded)
        log.info("token cache miss: %d conversations tokenised, written to %s", len(encoded), path)
    except OSError as exc:  # a read-only results folder must not stop training
        log.warning("token cache not written (%s)", exc)
    return encoded
