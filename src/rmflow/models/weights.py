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
# bytes per element of each safetensors dtype (the format's spec, huggingface/safetensors README)
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2,
               "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}
# weights saved with pickle (torch.save): rmflow never loads them (a pickle can run code)
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


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
    if not isinstance(header, dict):
        raise RmflowError(f"weights file has a safetensors header that is a JSON {type(header).__name__}, not an "
                          "object of tensors", file=where)
    for name, entry in header.items():
        if name != "__metadata__":
            _check_entry(name, entry, where)
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__"]
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        raise RmflowError(f"weights file is cut short: its tensors need {needed} bytes, the file holds {size} "
                          "(a full disk or quota during the save, or an interrupted copy?)", file=where)


def _check_entry(name: str, entry, where: str) -> None:
    """One tensor's header entry: a known dtype, a shape, and offsets spanning exactly the bytes they need."""
    try:
        dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        count = 1
        for dim in shape:
            count *= int(dim)
    except (TypeError, KeyError, ValueError) as exc:
        raise RmflowError(f"weights file: tensor {name!r} has a malformed header entry ({type(exc).__name__}: {exc})",
                          file=where) from exc
    if dtype not in DTYPE_BYTES:
        raise RmflowError(f"weights file: tensor {name!r} has unknown dtype {dtype!r}", file=where)
    needed = count * DTYPE_BYTES[dtype]
    if end - start != needed:
        raise RmflowError(f"weights file: tensor {name!r} is {dtype} of shape {list(shape)}, {needed} bytes, but its "
                          f"offsets span {end - start} (an edited or corrupt header)", file=where)


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
    weights = sorted(folder.glob("*.safetensors"))
    pickled = sorted(p.name for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern)
                     if p.name not in ("training_args.bin",))
    if not weights and pickled and (folder / "config.json").is_file():
        raise RmflowError(f"holds its weights only as {', '.join(pickled[:3])}: a pickle, which rmflow never loads "
                          "(it can run code). Convert it once where you trust it: load it in transformers and "
                          "save_pretrained(dir) (safetensors is the default)", file=str(folder))
    for path in weights:
        _check_safetensors(path)
