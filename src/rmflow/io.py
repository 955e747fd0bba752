"""Atomic outputs: a file or directory is either complete or absent, never half-written.

Temporaries come from ``mkstemp``/``mkdtemp``, which create them private (0600/0700) whatever the umask; each is
given the mode a plain ``open()``/``mkdir()`` would have had under the current umask before it is renamed into
place, so a lab's shared results directory stays readable by the group (0644/0755 under umask 0022, 0664/0775
under 0002). Everything rmflow writes goes through these helpers, checkpoints included.

A write that fails (no permission, a read-only or full disk, a folder where a file goes) is an ``RmflowError``
naming the final path, with the temporary removed. A temporary's name carries its writer's host and pid
(``.<name>.<host>.<pid>.<random>.tmp``): one left by a writer that was killed (SIGKILL, a node crash) is removed by
the next write of the same path once that writer is gone. The finals a command has put in place are recorded
(``written``) so the CLI can take them back when the command fails later: a failed command leaves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from rmflow.errors import RmflowError

# errors of the place written to, not of rmflow: said as one line naming the path
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EISDIR,
                errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.EIO}
LEFTOVER_QUIET_S = 1800
written: list[Path] = []  # finals this process's writers put in place (cli.main takes them back on a failure)
created: list[Path] = []  # folders they made on the way (taken back too, when left empty)


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


def write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the place written to failing (a full, read-only or forbidden disk), also as polars
    reports it (ComputeError: "... underlying IO error: No space left on device (os error 28)")."""
    if isinstance(exc, OSError):
        return exc.errno in WRITE_ERRNOS
    return type(exc).__name__ == "ComputeError" and "os error" in str(exc)


def cannot_write(final: Path, exc: BaseException) -> RmflowError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[-1]
    return RmflowError(f"cannot be written: {reason}", file=str(final))


def _refuse_wrong_kind(final: Path, kind: str) -> None:
    """A folder where a file is written, or a file where a folder is ("any": either)."""
    if kind == "file" and final.is_dir():
        raise RmflowError("is an existing folder; a file is written here", file=str(final))
    if kind == "dir" and final.exists() and not final.is_dir():
        raise RmflowError("is an existing file; a folder is written here", file=str(final))


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, innermost first (the last one's parent exists)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def check_writable(path: str | os.PathLike, kind: str = "file") -> None:
    """Refuse, before any work, an output that cannot be written: a folder where a file goes (or the reverse), a
    file where a folder is needed on the way, a parent without write permission, a read-only or full disk."""
    final = Path(path)
    _refuse_wrong_kind(final, kind)
    missing = _missing_folders(final.parent)
    ancestor = missing[-1].parent if missing else final.parent
    if not ancestor.is_dir():
        raise RmflowError(f"cannot be written: {ancestor} is a file, not a folder", file=str(final))
    if not os.access(ancestor, os.W_OK | os.X_OK):  # access() also reports a read-only file system, even to root
        raise RmflowError(f"cannot be written: no permission to write in {ancestor} (or it is on a read-only disk)",
                          file=str(final))
    stats = os.statvfs(ancestor)
    if (stats.f_bfree if os.geteuid() == 0 else stats.f_bavail) == 0:  # root may use the reserved blocks
        raise RmflowError(f"cannot be written: the disk holding {ancestor} is full", file=str(final))


def _temporary_prefix(final: Path) -> str:
    return f".{final.name}.{socket.gethostname()}.{os.getpid()}."


def remove_leftovers(final: Path) -> list[Path]:
    """Temporaries of ``final`` whose writer was killed mid-write, removed: on this host, when its pid no longer
    runs; from another host (a rerun lands on another node), when nothing in it changed for LEFTOVER_QUIET_S (a
    live writer of a 16 GB model touches its files every second)."""
    host, removed = socket.gethostname(), []
    for leftover in final.parent.glob(f".{glob.escape(final.name)}.*.tmp"):
        middle = leftover.name[len(final.name) + 2:-len(".tmp")].rsplit(".", 2)  # host (may hold dots), pid, random
        if len(middle) != 3 or not middle[1].isdigit():
            continue  # not a name this version writes: its writer cannot be known
        if middle[0] == host and pid_alive(int(middle[1])):
            continue
        if middle[0] != host and time.time() - _newest_change(leftover) < LEFTOVER_QUIET_S:
            continue
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    if removed:
        import logging

        logging.getLogger(__name__).warning("removed %d temporary file(s) of an interrupted write of %s: %s",
                                            len(removed), final, ", ".join(p.name for p in removed))
    return removed


def _newest_change(path: Path) -> float:
    times = [path.lstat().st_mtime]
    if path.is_dir():
        times += [p.lstat().st_mtime for p in path.rglob("*")]
    return max(times)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _prepared(final: Path) -> None:
    try:
        missing = _missing_folders(final.parent)
        final.parent.mkdir(parents=True, exist_ok=True)
        created.extend(reversed(missing))
        remove_leftovers(final)
    except OSError as exc:
        raise cannot_write(final, exc) from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, output: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds. ``output`` False: a
    cache entry, kept when the command fails later (it is still right)."""
    final = Path(path)
    _refuse_wrong_kind(final, "file")
    _prepared(final)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise cannot_write(final, exc) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, plain_file_mode())
        os.replace(tmp_path, final)
        if output:
            written.append(final)
    except Exception as exc:
        if write_failure(exc):
            raise cannot_write(final, exc) from exc
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory; it replaces ``path`` only if the block succeeds."""
    final = Path(path)
    _refuse_wrong_kind(final, "dir")
    _prepared(final)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=final.parent))
    except OSError as exc:
        raise cannot_write(final, exc) from exc
    try:
        yield tmp
        share_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        written.append(final)
    except Exception as exc:
        if write_failure(exc):
            raise cannot_write(final, exc) from exc
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def take_back_written() -> list[Path]:
    """Remove what this process's writers put in place (a command that failed after writing some outputs)."""
    taken = []
    while written:
        final = written.pop()
        if final.is_dir():
            shutil.rmtree(final, ignore_errors=True)
        elif final.exists():
            final.unlink()
        taken.append(final)
    while created:
        with contextlib.suppress(OSError):  # not empty (something else is in it) or already gone: left
            created.pop().rmdir()
    return taken


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
