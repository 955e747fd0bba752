"""Refuse a local model directory whose weights cannot be read, naming the file, before anything is loaded.

A safetensors file cut short (a full disk or quota during a save, an interrupted copy) otherwise ends deep in
transformers as ``SafetensorError: invalid header length`` or a crash mid-load; a sharded checkpoint whose index
names a shard the folder lacks ends as a bare FileNotFoundError. Reading the headers costs a few bytes per file, so
the plan checks configured directories before any job is submitted, and every load checks again at run time.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from rmflow.errors import RmflowError

INDEX = "model.safetensors.index.json"
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def _check_safetensors(path: Path) -> None:
    size = path.stat().st_size
    where = str(path)
    if size < 8:
        raise RmflowError(f"weights file is cut short: {size} bytes, not even a safetensors header (a full disk or "
                          "quota during the save, or an interrupted copy?)", file=where)
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        if length > MAX_HEADER or 8 + length > size:
            raise RmflowError(f"weights file is cut short or not safetensors: its header claims {length} bytes, the "
                              f"file holds {size} (a full disk or quota during the save, or an interrupted copy?)",
                              file=where)
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RmflowError(f"weights file has an unreadable safetensors header ({exc})", file=where) from exc
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        raise RmflowError(f"weights file is cut short: its tensors need {needed} bytes, the file holds {size} "
                          "(a full disk or quota during the save, or an interrupted copy?)", file=where)


def check_model_dir(ref: str) -> None:
    """Every weights file of a local model directory readable, every shard its index names present."""
    folder = Path(os.path.expanduser(ref))
    if not folder.is_dir():
        return
    index = folder / INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError) as exc:
            raise RmflowError(f"unreadable shard index ({type(exc).__name__}: {exc})", file=str(index)) from exc
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise RmflowError(f"the shard index names {', '.join(missing)}, which the folder lacks (an interrupted "
                              "download or copy?)", file=str(index))
    for path in sorted(folder.glob("*.safetensors")):
        _check_safetensors(path)
