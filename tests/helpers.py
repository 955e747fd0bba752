"""Helpers the test folders share (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "tests/workflow/quick.yaml"
DEFAULT = REPO / "config/config.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# CI clones the repo with shared/ beside it; elsewhere point RMFLOW_SHARED_DATA at a copy
SHARED_DATA = Path(os.environ.get("RMFLOW_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def pair(prompt="Say hi.", good="Hi!", bad="Go away.", **extra) -> dict:
    user = [{"role": "user", "content": prompt}]
    return {"chosen": user + [{"role": "assistant", "content": good}],
            "rejected": user + [{"role": "assistant", "content": bad}], **extra}


class LookupScorer:
    """Scores each answer from a table: the numbers are ours, not the code's."""

    kind = "scalar"

    def __init__(self, table: dict[str, float]):
        self.table = table

    def score_conversations(self, conversations, progress=True):
        return [self.table[c[-1]["content"]] for c in conversations]


# the tiny test models' training: a few steps at a high rate (a spec_for keyword changes one)
TEST_TRAIN = {"lr": 3e-3, "max_steps": 4, "per_device_batch": 8, "grad_accum": 1, "max_length": 128, "log_every": 1}


def spec_for(method: str, base_model="unused", train_data="unused", *, options: dict | None = None,
             train: dict | None = None, base: str = "tiny", test_defaults: bool = True, **values):
    """A RunSpec as the plan writes one, for a test: ``values`` are RunSpec fields (revision, attn_implementation,
    ...) or training options, on top of ``TEST_TRAIN`` (unless ``test_defaults=False``: the schema's defaults) and
    under ``train`` (a test's own dict of options, applied last). RunSpec parses the training options and the
    method's options now (TrainConfig, the method's Config), so a misspelt key fails the test that wrote it instead
    of being carried to a train() that may never read it."""
    import dataclasses

    from rmflow.spec import RunSpec

    fields = {f.name for f in dataclasses.fields(RunSpec)} - {"method", "base", "base_model", "train_data", "options"}
    spec_values = {k: v for k, v in values.items() if k in fields}
    train = {**(TEST_TRAIN if test_defaults else {}), **{k: v for k, v in values.items() if k not in fields},
             **(train or {})}
    return RunSpec(method=method, base=base, base_model=str(base_model), train_data=str(train_data), train=train,
                   options=dict(options or {}), **spec_values)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``rmflow`` exactly as a rule does (PYTHONPATH=<repo>/src), in a subprocess; returns the completed process.
    The source is this test tree's own, so a copy of the tree (mutmut's mutants/) tests its own code. ``env`` is
    added to ours."""
    source = [str(REPO / "src"), os.environ.get("PYTHONPATH")]
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(filter(None, source))}
    return subprocess.run([sys.executable, "-m", "rmflow.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def snakemake(workdir: Path, *args: str, configs=(DEFAULT, QUICK), timeout=900,
              umask: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real snakemake on the real Snakefile in ``workdir``; targets first (--configfile takes every following
    word as a config file); ``umask`` for the run (the modes of what it writes follow it); ``env`` on top of ours."""
    cmd = [*SNAKEMAKE, *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", *map(str, configs)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def prepared(path: Path, rows: list[dict], fmt: str, where: dict | None = None) -> Path:
    """Rows of any format prepared as the workflow's prepare_data rule does (canonical parquet of its kind)."""
    from rmflow.data.formats import kind_of, write_rows
    from rmflow.data.prepare import prepare_rows

    kept, _ = prepare_rows(rows, fmt, where=where)
    write_rows(kept, kind_of(fmt), path)
    return path


def hub_cache(cache: Path, repo_id: str, folder: Path, repo_type: str = "model") -> str:
    """``folder`` laid out as the Hugging Face cache holds a downloaded repository (HF_HUB_CACHE): blobs named by
    hash, a snapshot folder of links to them named by the commit, refs/main naming that commit; the rehearsal hub's
    own writer. Returns the commit; with HF_HUB_OFFLINE=1 transformers and huggingface_hub then load ``repo_id``."""
    from rmflow.rehearsal.writer import write_repo

    return write_repo(cache, repo_id, repo_type, {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file()})


@contextlib.contextmanager
def serving(app):
    """``app`` (an ASGI app) served by uvicorn on a free loopback port in a thread: a real HTTP server for real
    clients; yields its URL and stops it on exit."""
    import threading
    import time

    import uvicorn

    from rmflow.serve.run import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
