"""Resumable training: checkpoints every N optimizer steps and when SLURM warns of a time limit or preemption.

A checkpoint is accelerate's ``save_state`` (model and optimizer) plus what rmflow writes itself without pickle
(``state_files``: the LR scheduler, every process's RNG states) and the loop's own position (step, epoch, batch
within the epoch, running totals, log history) in ``loop_state.json``. A checkpoint holding a pickle is refused.
Each one is written to a temporary directory, sealed with a manifest of SHA-256 sums, and renamed into place, so
a half-written checkpoint never looks complete. On resume the newest checkpoint whose manifest verifies and that
loads is used; a corrupt one is skipped with a warning naming it, never used.

Checkpoints live in ``results/scratch/``: Snakemake deletes a job's declared outputs before a rerun, so they must
sit outside them. The training command removes them once the model is saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.io import share_tree
from rmflow.train import state_files, writer_lock

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOOP_STATE = "loop_state.json"
RUN = "run.json"  # what the checkpoint belongs to: the run's training-relevant fields (run_fingerprint)
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: "try again later"; the rerun resumes from the checkpoint
# a rerun whose run differs from its checkpoints' refuses to resume them; RMFLOW_STALE_CHECKPOINTS=restart (or
# rmflow train --stale-checkpoints restart) moves them aside (<dir>.stale-<time>) and trains from the start
STALE_ENV = "RMFLOW_STALE_CHECKPOINTS"
# settings that change when or what is logged and saved, not the trained weights
_NOT_IN_FINGERPRINT = {"checkpoint_every", "checkpoint_every_minutes", "log_every", "report_to"}
_directory: Path | None = None
_run: dict | None = None
_stale: str = "refuse"


class Preempted(SystemExit):
    """Raised after the checkpoint on SIGTERM/SIGUSR1 is written; exits with PREEMPTED_EXIT."""

    def __init__(self, step: int, where: Path):
        super().__init__(PREEMPTED_EXIT)
        self.step, self.where = step, where


@contextlib.contextmanager
def checkpoint_directory(path: str | os.PathLike | None, run: dict | None = None, stale: str | None = None):
    """Turn checkpointing on for training started inside this block (the CLI's --checkpoint-dir). ``run``: what the
    checkpoints belong to (``run_fingerprint``); one written for another run is never resumed (``stale``: refuse,
    the default, or restart)."""
    global _directory, _run, _stale
    previous = (_directory, _run, _stale)
    _directory, _run = (Path(path) if path else None), run
    _stale = stale or os.environ.get(STALE_ENV) or "refuse"
    if _stale not in ("refuse", "restart"):
        raise RmflowError(f"must be refuse or restart, not {_stale!r}", field=STALE_ENV)
    try:
        yield
    finally:
        _directory, _run, _stale = previous


def run_fingerprint(spec, data: str | None = None, init: str | None = None) -> dict:
    """The fields of a run that change its trained weights: method and its version and options, base and revision,
    every training option but when to log and save, the data (path, size and SHA-256) and the model it starts from.
    A checkpoint records them; a resume compares them field by field."""
    import dataclasses

    train = {k: v for k, v in dataclasses.asdict(spec.train).items() if k not in _NOT_IN_FINGERPRINT}
    data = data or spec.train_data
    fields = {"method": spec.method, "method_version": spec.method_version, "base": spec.base,
              "base_model": spec.base_model, "revision": spec.revision, "init": init,
              "options": dataclasses.asdict(spec.options) if dataclasses.is_dataclass(spec.options) else spec.options,
              **{f"train.{k}": v for k, v in train.items()}, "data": data}
    if data and Path(data).is_file():
        fields["data_bytes"], fields["data_sha256"] = Path(data).stat().st_size, _sha256(Path(data))
    return json.loads(json.dumps(fields, default=str))


def _differences(recorded: dict, current: dict) -> list[str]:
    keys = sorted(set(recorded) | set(current))
    return [f"{k}: {recorded.get(k)!r} there, {current.get(k)!r} now" for k in keys
            if recorded.get(k) != current.get(k)]


def active_directory() -> Path | None:
    return _directory


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST)


def verify(path: Path) -> str | None:
    """Why ``path`` is not a usable checkpoint, or None when every file matches its manifest entry."""
    manifest_file = path / MANIFEST
    if not manifest_file.exists():
        return "no manifest (the save never finished)"
    try:
        manifest = json.loads(manifest_file.read_text())
    except ValueError as exc:
        return f"unreadable manifest: {exc}"
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.exists():
            return f"{name} is missing"
        if file.stat().st_size != entry["bytes"]:
            return f"{name} has {file.stat().st_size} bytes, the manifest says {entry['bytes']} (truncated?)"
        if _sha256(file) != entry["sha256"]:
            return f"{name} does not match its checksum"
    return None


def _reason(exc: Exception) -> str:
    """One line for a load failure; for torch's weights-only refusal, the line naming what it refused."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        named = [line for line in lines[1:] if "GLOBAL" in line or "Unsupported" in line]
        return ("torch refused to unpickle more than tensors (weights_only=True)"
                + (f": {named[0]}" if named else ""))
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


class PreemptionSignals:
    """Catch SIGTERM and SIGUSR1 and note them; the loop checkpoints at the next optimizer step and exits."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.received is None:
            log.warning("received %s: checkpointing at the next optimizer step, then exiting",
                        signal.Signals(signum).name)
        self.received = signum

    def __enter__(self):
        for sig in self.SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


class Checkpointer:
    """Save and restore one run's checkpoints under ``directory``, keeping the newest ``keep``."""

    def __init__(self, directory: Path, every: int, keep: int = 2, minutes: float = 0.0):
        self.directory, self.every, self.keep = Path(directory), every, max(1, keep)
        self.minutes, self.last_save, self.durations = minutes, time.time(), []
        self.claimed, self.touched = False, time.time()

    def claim(self, accelerator) -> RmflowError | None:
        """Become the one writer of this directory (writer_lock, on the main process); the refusal if another
        lives. The caller makes every rank agree before raising it (a collective)."""
        if not accelerator.is_main_process:
            return None
        try:
            writer_lock.claim(self.directory)
        except RmflowError as exc:
            return exc
        self.claimed = True
        return None

    def alive(self) -> None:
        if self.claimed:
            self.touched = writer_lock.touch(self.directory, self.touched)

    def release(self) -> None:
        if self.claimed:
            writer_lock.release(self.directory)
            self.claimed = False

    def save_times(self) -> dict:
        """Seconds each save of this process took: count, mean, max (metrics.json's checkpoint_save_s)."""
        if not self.durations:
            return {"count": 0, "mean": None, "max": None}
        return {"count": len(self.durations), "mean": round(sum(self.durations) / len(self.durations), 3),
                "max": round(max(self.durations), 3)}

    def _candidates(self) -> list[Path]:
        if not self.directory.exists():
            return []
        return sorted((p for p in self.directory.glob("step-*") if p.is_dir()), reverse=True)

    def save(self, accelerator, scheduler, step: int, loop_state: dict) -> Path:
        began = time.time()
        final = self.directory / f"step-{step:08d}"
        tmp = self.directory / f".tmp-step-{step:08d}"
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        state_files.write_rng(tmp, accelerator.process_index)  # and removes accelerate's pickle of them
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state_files.write_scheduler(scheduler, tmp)
            (tmp / LOOP_STATE).write_text(json.dumps(loop_state))
            if _run is not None:
                (tmp / RUN).write_text(json.dumps(_run, indent=1, sort_keys=True))
            files = {str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in _files(tmp)}
            (tmp / MANIFEST).write_text(json.dumps({"step": step, "files": files}, indent=1))
            share_tree(tmp)  # the modes a plain mkdir/open would give under the umask (rmflow.io)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
            for old in self._candidates()[self.keep:]:
                shutil.rmtree(old, ignore_errors=True)
            log.info("checkpoint saved: %s (%.1f s)", final, time.time() - began)
        accelerator.wait_for_everyone()
        self.last_save = time.time()
        self.durations.append(self.last_save - began)
        return final

    def restore(self, accelerator, scheduler) -> dict | None:
        """Load the newest good checkpoint into the prepared objects; return its loop state (None: start fresh)."""
        candidates = self._candidates()
        if candidates and _run is not None and not self._belongs(candidates, accelerator):
            return None
        skipped, half_loaded = [], []
        for path in candidates:
            problem = verify(path)
            if problem is None and (pickles := state_files.pickles_in(path)):
                problem = f"it holds {', '.join(pickles)}: a pickle, which rmflow never writes and never opens"
            if problem is None:
                try:
                    accelerator.load_state(str(path))
                    state_files.read_scheduler(scheduler, path)
                    state_files.read_rng(path, accelerator.process_index)
                    state = json.loads((path / LOOP_STATE).read_text())
                except Exception as exc:  # noqa: BLE001 - any failure to load means "not usable"
                    problem = f"failed to load: {_reason(exc)}"
                    half_loaded.append(path.name)
            if problem is not None:
                log.warning("checkpoint %s is not usable (%s); trying an older one", path, problem)
                skipped.append(path.name)
                continue
            if skipped:
                log.warning("resuming from %s instead of the newer corrupt %s", path.name, ", ".join(skipped))
            log.info("resuming from %s (optimizer step %d, epoch %d, batch %d)", path, state["step"],
                     state["epoch"], state["batch"])
            return state
        if half_loaded:  # the model or optimizer may hold part of a checkpoint: starting "fresh" would not be
            raise RmflowError(f"no checkpoint in {self.directory} could be loaded ({', '.join(skipped)}; the log says "
                              f"why) and {', '.join(half_loaded)} failed part-way. To train from the start, move them "
                              f"aside: {STALE_ENV}=restart", field="checkpoint")
        if skipped:
            log.warning("no usable checkpoint in %s (%d corrupt: %s): training from the start", self.directory,
                        len(skipped), ", ".join(skipped))
        return None

    def _belongs(self, candidates: list[Path], accelerator) -> bool:
        """Whether the checkpoints were written for this run; if not, refuse (RmflowError) or, with the restart
        policy, move them aside (every rank waits for that) and return False: training starts from step 0."""
        recorded_file = candidates[0] / RUN
        recorded = json.loads(recorded_file.read_text()) if recorded_file.is_file() else None
        differences = _differences(recorded, _run) if recorded is not None else \
            ["the checkpoint records no run (written before checkpoints recorded one)"]
        if not differences:
            return True
        if _stale != "restart":
            raise RmflowError(
                f"the checkpoints in {self.directory} belong to another run; resuming them would train that run, "
                f"not this one. Differences: {'; '.join(differences[:8])}"
                f"{f' (+{len(differences) - 8} more)' if len(differences) > 8 else ''}. To start this run afresh "
                f"(the old checkpoints moved aside, not deleted): {STALE_ENV}=restart, or rmflow train "
                "--stale-checkpoints restart", field="checkpoint")
        if accelerator.is_main_process:
            aside = self.directory.with_name(f"{self.directory.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.directory, aside)
            log.warning("checkpoints of another run moved to %s (%s); training from the start", aside,
                        "; ".join(differences[:3]))
        accelerator.wait_for_everyone()
        return False

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        self.release()
