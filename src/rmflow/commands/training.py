"""Training commands: base models, a method's training, its own data step, one stage of a multi-stage method."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rmflow.errors import RmflowError
from rmflow.options import Command, opt, set_threads


@dataclass(kw_only=True)
class BuildBase:
    spec: str = opt(help="JSON {tiny: {...}} or {gguf: {file | package}, chat_template}")
    corpus: str | None = opt(None, "tiny: prepared pairs whose texts train the tokenizer")
    out: str = opt(writes="dir")
    threads: int | None = opt(None)


def build_base(a: BuildBase) -> None:
    from rmflow.models import build

    set_threads(a.threads)
    build.main(a.spec, a.corpus or None, a.out)


@dataclass(kw_only=True)
class Train:
    spec: str = opt(help="run spec JSON (results/specs/runs/<method>/<base>.json)")
    out: str = opt(help="model directory to write", writes="dir")
    data: str | None = opt(None, "train on this file instead of the spec's train_data")
    init: str | None = opt(None, "start from this model directory instead of the spec's base")
    threads: int | None = opt(None, "torch threads in all (split between processes)")
    checkpoint_dir: str | None = opt(None, "resumable checkpoints here (outside the rule's outputs); resumes from "
                                           "the newest good one")
    tracking_dir: str | None = opt(None, "train.report_to: TensorBoard/W&B files here (default "
                                         "results/tracking/<method>/<base>)")
    stale_checkpoints: str | None = opt(None, "checkpoints written for another run (a changed spec or data): refuse "
                                              "(default) or restart (moved aside; also RMFLOW_STALE_CHECKPOINTS)",
                                        choices=["refuse", "restart"])
    processes: int = opt(1, "processes per machine (one per GPU) via accelerate")
    machines: int = opt(1, "machines (SLURM nodes), one launcher on each")


def train(a: Train) -> None:
    from rmflow import methods
    from rmflow.spec import RunSpec
    from rmflow.train import launch
    from rmflow.train.checkpoint import checkpoint_directory, run_fingerprint
    from rmflow.train.tracking import tracking_run

    spec = RunSpec.read(a.spec)
    module = methods.get(spec.method, where=f"{a.spec}: method")
    if a.processes * a.machines > 1 and not launch.inside_launcher():
        threads = max(1, (a.threads or 0) // a.processes) if a.threads else None
        before = launch.model_stamp(a.out)
        code = launch.relaunch(_worker_args(a, threads), a.processes, a.machines)
        code = launch.judge_exit(code, a.out, before)
        if code == 0 and not launch.per_node_launcher():  # every rank has exited: the checkpoints have done their job
            _drop_checkpoints(a.checkpoint_dir)
        sys.exit(code)
    set_threads(a.threads)
    overrides = {k: v for k, v in (("data", a.data), ("init", a.init)) if v}
    tracking_dir = a.tracking_dir or f"results/tracking/{spec.method}/{spec.base}"
    run = run_fingerprint(spec, a.data, a.init) if a.checkpoint_dir else None
    with checkpoint_directory(a.checkpoint_dir, run, a.stale_checkpoints), \
            tracking_run(f"{spec.method}/{spec.base}", tracking_dir):
        module.train(spec, a.out, **overrides)
    # A launched worker never deletes them: another rank may still abort in teardown, and then the launcher
    # decides (the model sealed: a success; not sealed: the retry resumes from these checkpoints).
    if not launch.inside_launcher():
        _drop_checkpoints(a.checkpoint_dir)


def _drop_checkpoints(directory: str | None) -> None:
    if directory:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)


def _worker_args(a: Train, threads: int | None) -> list[str]:
    """``rmflow train`` arguments for each launched worker (everything but the launch options)."""
    args = ["--spec", a.spec, "--out", a.out]
    for flag, value in (("--data", a.data), ("--init", a.init), ("--checkpoint-dir", a.checkpoint_dir),
                        ("--tracking-dir", a.tracking_dir), ("--threads", threads),
                        ("--stale-checkpoints", a.stale_checkpoints)):
        if value:
            args += [flag, str(value)]
    return args


@dataclass(kw_only=True)
class Transform:
    spec: str = opt()
    data: str = opt(help="prepared standard-row parquet")
    out: str = opt(writes="file")
    report: str = opt(help="JSON with the row counts", writes="file")


def transform(a: Transform) -> None:
    from rmflow import methods
    from rmflow.data.prepare import read_pairs
    from rmflow.io import write_json
    from rmflow.methods._io import write_rows
    from rmflow.spec import RunSpec

    spec = RunSpec.read(a.spec)
    rows, counts = methods.get(spec.method).transform(read_pairs(a.data), spec.options)
    write_rows(rows, a.out)
    write_json(a.report, {"method": spec.method, "source": a.data, **counts})


@dataclass(kw_only=True)
class Stage:
    method: str = opt()
    stage: str = opt()
    spec: str = opt()
    inputs: str = opt(help='JSON {name: path or hub id}: what the stage reads (the method\'s stage_inputs; e.g. '
                           '{"backbone": ..., "data": ...})')
    out: str = opt(writes="any")
    checkpoint_dir: str | None = opt(None, "embeddings of a large set kept here chunk by chunk (outside the rule's "
                                           "outputs); a rerun resumes from them, and they go once the stage is done")
    threads: int | None = opt(None)


def stage(a: Stage) -> None:
    import json

    from rmflow import methods

    module = methods.get(a.method, where="--method")
    if not methods.has_hook(module, "run_stage"):
        raise RmflowError(f"method '{a.method}' has no stages (it trains in one step: rmflow train)", field="stage")
    try:
        inputs = json.loads(a.inputs)
    except json.JSONDecodeError as exc:
        raise RmflowError(f"--inputs is not a JSON object ({exc})", field="inputs") from exc
    from rmflow.train.checkpoint import checkpoint_directory

    set_threads(a.threads)
    with checkpoint_directory(a.checkpoint_dir):
        methods.hook(module, "run_stage")(a.stage, a.spec, inputs, a.out)
    _drop_checkpoints(a.checkpoint_dir)


COMMANDS = [
    Command("build-base", "build a base model directory: a tiny model, or one converted from GGUF", BuildBase,
            build_base),
    Command("train", "train one method on one base model from a run spec", Train, train),
    Command("transform", "a method's own data preparation (e.g. pair-PM rows, RRM augmentation)", Transform,
            transform),
    Command("stage", "one stage of a method of several (its STAGES: ArmoRM probe, gate; the tree probe, fit)", Stage,
            stage),
]
