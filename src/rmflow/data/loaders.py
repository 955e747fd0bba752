"""Read rows from local ``.jsonl``/``.json``/``.parquet`` files, a folder of them, or a hub dataset id.

Every row carries its 1-based position (``__row__``) so validation errors name the exact line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.hub import LOCAL_SUFFIXES, looks_local


def read_rows(ref: str | list[str], *, split: str = "train", revision: str | None = None,
              data_dir: str | None = None, recursive: bool = False) -> list[dict]:
    """Load rows from a local file or folder, else from the hub via ``datasets.load_dataset``; a list of such
    references is read in order and concatenated (a mixture of sets). ``recursive``: a folder's subfolders too
    (RMB's RMB_dataset nests its files by goal and scenario)."""
    if isinstance(ref, (list, tuple)):
        if not ref:
            raise RmflowError("an empty list of data paths")
        return [row for one in ref for row in read_rows(one, split=split, revision=revision, data_dir=data_dir,
                                                        recursive=recursive)]
    if looks_local(ref):
        path = Path(os.path.expanduser(ref))
        if not path.exists():
            raise RmflowError("no such file or directory", file=ref)
        listed = (path.rglob("*") if recursive else path.iterdir()) if path.is_dir() else [path]
        files = sorted(p for p in listed if p.is_file() and p.suffix in LOCAL_SUFFIXES) if path.is_dir() else [path]
        if not files:
            raise RmflowError(f"folder holds no {'/'.join(LOCAL_SUFFIXES)} files", file=ref)
        rows = [row for f in files for row in _read_file(f)]
    else:
        rows = _read_hub(ref, split, revision, data_dir)
    if not rows:
        raise RmflowError("holds no rows", file=ref)
    return rows


TOO_DEEP = "JSON nested too deeply to read (over Python's recursion limit); rows are flat objects"


def _read_file(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = []
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = _decode(raw, path, lineno)
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise RmflowError(f"malformed JSON ({exc.msg} at column {exc.colno})", file=str(path),
                                      row=lineno) from exc
                except RecursionError as exc:
                    raise RmflowError(TOO_DEEP, file=str(path), row=lineno) from exc
                if not isinstance(row, dict):
                    raise RmflowError("each line must be a JSON object", file=str(path), row=lineno)
                rows.append({**row, "__row__": lineno, "__file__": str(path)})
        return rows
    if path.suffix == ".json":
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")  # a leading byte-order mark (Windows, spreadsheets) is not content
        except UnicodeDecodeError as exc:
            raise RmflowError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded",
                              file=str(path), row=raw[:exc.start].count(b"\n") + 1) from exc
        try:
            data = json.loads(text or "null")
        except json.JSONDecodeError as exc:
            raise RmflowError(f"malformed JSON ({exc.msg})", file=str(path), row=exc.lineno) from exc
        except RecursionError as exc:
            raise RmflowError(TOO_DEEP, file=str(path)) from exc
        if data is None:
            return []
        if not isinstance(data, list):
            raise RmflowError("a .json data file must hold a list of row objects", file=str(path))
        for i, r in enumerate(data, 1):
            if not isinstance(r, dict):
                raise RmflowError(f"element {i} of the list is a JSON {type(r).__name__}, not a row object",
                                  file=str(path), row=i)
        return [{**r, "__row__": i, "__file__": str(path)} for i, r in enumerate(data, 1)]
    import polars as pl

    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for corrupt files
        raise RmflowError(f"unreadable parquet file ({exc})", file=str(path)) from exc
    return [{**r, "__row__": i, "__file__": str(path)} for i, r in enumerate(frame.to_dicts(), start=1)]


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    try:  # utf-8-sig on line 1: spreadsheet and Windows tools start UTF-8 files with a byte-order mark
        return raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise RmflowError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} cannot be decoded "
                          "(re-encode the file as UTF-8)", file=str(path), row=lineno) from exc


def _read_hub(dataset_id: str, split: str, revision: str | None, data_dir: str | None = None) -> list[dict]:
    """A hub data set, in two steps: huggingface_hub fetches the repository's files at ``revision`` (only
    ``data_dir`` when given) into its cache, then ``datasets`` reads that snapshot folder, inferring splits from the
    file names and the card's ``configs`` exactly as it does for a hub id. Why not ``load_dataset(id)``: offline,
    datasets (5.2) cannot resolve a hub id from huggingface_hub's cache (only from its own processed cache), so a cached
    or pre-seeded download (a cluster's shared HF_HOME, the rehearsal hub) would not load; and the snapshot's folder
    name is the commit the rows came from, which the records cite."""
    from rmflow.hub import go_offline_if_unreachable

    go_offline_if_unreachable()
    import datasets
    from huggingface_hub import snapshot_download

    where = f"hub dataset '{dataset_id}'" + (f" (data_dir '{data_dir}')" if data_dir else "")
    patterns = [f"{data_dir.strip('/')}/*", "README.md"] if data_dir else None
    try:
        folder = snapshot_download(dataset_id, repo_type="dataset", revision=revision, allow_patterns=patterns)
    except Exception as exc:  # offline and not cached, missing, gated: all end the same way for the user
        raise RmflowError(
            f"could not load {where}: {type(exc).__name__}: {exc}. Without network access, download it "
            "elsewhere (or seed HF_HOME) and point the config's 'path' at a local .jsonl/.json/.parquet file or "
            "folder instead."
        ) from exc
    try:
        ds = datasets.load_dataset(folder, split=split, data_dir=data_dir)
    except ValueError as exc:  # an unknown split names the ones the repository has
        raise RmflowError(f"could not read split '{split}' of {where}: {exc}", field="split") from exc
    except Exception as exc:  # an unreadable file in the snapshot: say which data set, not a traceback
        raise RmflowError(f"could not read {where} from {folder}: {type(exc).__name__}: {exc}") from exc
    return [{**r, "__row__": i, "__file__": f"hub:{dataset_id}"} for i, r in enumerate(ds, start=1)]


def strip_position(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("__row__", "__file__")}
