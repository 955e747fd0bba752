"""Atomic outputs: a file or directory is either complete or absent, never half-written.

Temporaries come from ``mkstemp``/``mkdtemp``, which create them private (0600/0700) whatever the umask; each is
given the mode a plain ``open()``/``mkdir()`` would have had under the current umask before it is renamed into
place, so a lab's shared results directory stays readable by the group (0644/0755 under umask 0022, 0664/0775
under 0002). Everything rmflow writes goes through these helpers, checkpoints included.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


def current_umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter before Python 3.13 on Linux)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def plain_file_mode() -> int:
    return 0o666 & ~current_umask()


def plain_dir_mode() -> int:
    return 0o777 & ~current_umask()


def share_tree(root: Path) -> None:
    """Give a finished temporary tree the modes plain creation would have: directories rwx, files rw, under the
    umask. Files written by libraries with their own temporaries (safetensors, transformers) are fixed the same
    way; an executable bit already present on a file is kept."""
    file_mode, dir_mode = plain_file_mode(), plain_dir_mode()
    os.chmod(root, dir_mode)
    for current, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(current, name), dir_mode)
        for name in files:
            path = os.path.join(current, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o100
                os.chmod(path, file_mode | (0o111 & dir_mode if executable else 0))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, plain_file_mode())
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; it replaces ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        share_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=jsonable) + "\n")


# A rule's shell command is one argument to bash: at most 128 KiB on Linux (MAX_ARG_STRLEN)
COMMAND_DATA_LIMIT = 100_000


def command_json(value: Any, what: str, limit: int = COMMAND_DATA_LIMIT) -> str:
    """``value`` as one line of JSON for a rule's shell command (``rmflow write-json --data=...``), or a clear error
    where it is longer than a command can carry."""
    from rmflow.errors import RmflowError

    data = json.dumps(value, separators=(",", ":"), default=jsonable)
    size = len(data.encode())
    if size > limit:
        raise RmflowError(f"{what}: {size} bytes of JSON, over the {limit} a rule's shell command can carry")
    return data


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def jsonable(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
