"""The commands behind ``rmflow <command>`` (rmflow.cli builds the parser): each calls one module's ``main``."""

from __future__ import annotations

import sys

from rmflow.errors import RmflowError


def _threads(n: int | None) -> None:
    if n:
        import torch

        torch.set_num_threads(n)


def cmd_make_synthetic(a):
    from rmflow.data import synth

    synth.main(a.seed, a.n_train, a.n_test, a.out_dir)


def cmd_rehearsal_hub(a):
    from rmflow.rehearsal import writer

    writer.main(a.out, a.config, a.seed)


def cmd_rehearsal_profile(a):
    from rmflow.rehearsal import profile

    profile.main(a.source, a.out, a.partition, a.jobs)


def cmd_hub_check(a):
    from rmflow import hub_check

    hub_check.main(a.configfile)


def cmd_plan(a):
    from rmflow.sizing import main as sizing

    sizing.main(a.configfile, a.profile, a.json, a.sinfo or None, a.directory)


def cmd_prepare_data(a):
    from rmflow.data import prepare

    where = {}
    for item in (a.where or "").split():
        column, sep, value = item.partition("=")
        if not sep or not column:
            raise RmflowError(f"--where takes COLUMN=VALUE items, not '{item}'", field="where")
        where[column] = value
    source = a.source[0] if len(a.source) == 1 else a.source
    prepare.main(source, a.out, a.report, a.format, a.split, a.revision or None, a.on_invalid, a.name or None,
                 where, a.data_dir or None)


def cmd_prepare_eval(a):
    from rmflow.evaluate import eval_sets

    eval_sets.prepare(a.data, a.benchmark, a.split, a.revision or None, a.out, a.report, name=a.name)


def cmd_make_samples(a):
    from rmflow.data import samples

    sizes = {}
    for item in (a.sizes or "").split():
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise RmflowError(f"--sizes takes NAME=INTEGER items, not '{item}'", field="sizes")
        sizes[key] = int(value)
    samples.main(a.shared, a.out_dir, sizes)


def cmd_write_json(a):
    import json

    from rmflow.io import write_json, write_text

    obj = json.loads(a.data)
    if a.yaml:
        import yaml

        write_text(a.out, yaml.safe_dump(obj, sort_keys=False))
    else:
        write_json(a.out, obj)
    print(f"wrote {a.out}")


def cmd_formats(a):
    from rmflow.data.formats import FORMATS

    for name, spec in FORMATS.items():
        print(f"{name:<24}{spec.kind:<14}{spec.layout}")


def cmd_build_base(a):
    from rmflow.models import build

    _threads(a.threads)
    build.main(a.spec, a.corpus or None, a.out)


def cmd_train(a):
    from rmflow import methods
    from rmflow.spec import RunSpec
    from rmflow.train import launch
    from rmflow.train.checkpoint import checkpoint_directory
    from rmflow.train.tracking import tracking_run

    spec = RunSpec.read(a.spec)
    module = methods.get(spec.method, where=f"{a.spec}: method")
    if a.processes * a.machines > 1 and not launch.inside_launcher():
        threads = max(1, (a.threads or 0) // a.processes) if a.threads else None
        args = _train_args(a, threads)
        sys.exit(launch.relaunch(args, a.processes, a.machines))
    _threads(a.threads)
    overrides = {k: v for k, v in (("data", a.data), ("init", a.init)) if v}
    tracking_dir = a.tracking_dir or f"results/tracking/{spec.method}/{spec.base}"
    with checkpoint_directory(a.checkpoint_dir), tracking_run(f"{spec.method}/{spec.base}", tracking_dir):
        module.train(spec, a.out, **overrides)
    if a.checkpoint_dir:  # the model is saved: the checkpoints have done their job
        import shutil

        shutil.rmtree(a.checkpoint_dir, ignore_errors=True)


def _train_args(a, threads: int | None) -> list[str]:
    """``rmflow train`` arguments for each launched worker (everything but the launch options)."""
    args = ["--spec", a.spec, "--out", a.out]
    for flag, value in (("--data", a.data), ("--init", a.init), ("--checkpoint-dir", a.checkpoint_dir),
                        ("--tracking-dir", a.tracking_dir), ("--threads", threads)):
        if value:
            args += [flag, str(value)]
    return args


def cmd_transform(a):
    from rmflow import methods
    from rmflow.data.prepare import read_pairs
    from rmflow.io import write_json
    from rmflow.methods._io import write_rows
    from rmflow.spec import RunSpec

    spec = RunSpec.read(a.spec)
    rows, counts = methods.get(spec.method).transform(read_pairs(a.data), spec.options)
    write_rows(rows, a.out)
    write_json(a.report, {"method": spec.method, "source": a.data, **counts})


def cmd_evaluate(a):
    from rmflow.evaluate import run

    _threads(a.threads)
    external = None
    if a.external or a.endpoint:
        from rmflow import methods

        values = {"model": a.external, "scorer": a.scorer, "logit": a.logit, "revision": a.model_revision,
                  "score_position": a.score_position,
                  "trust_remote_code": a.trust_remote_code, "endpoint": a.endpoint, "max_length": a.max_length}
        external = methods.method_config(methods.RELEASED, {k: v for k, v in values.items() if v is not None},
                                         where="evaluate --external")
        a.method = methods.RELEASED
    elif not (a.model_dir and a.method):
        raise RmflowError("give --model-dir and --method (a model rmflow trained) or --external (any reward model)")
    run.main(a.model_dir, a.method, a.data, a.benchmark, a.out_dir, a.eval_set, a.base, a.split, a.revision or None,
             a.tie_rule, a.batch_size, external, sections=a.sections or None, prepared=a.prepared or None)


def cmd_submit(a):
    import json

    from rmflow import submit

    report = submit.main(a.profile, a.rule, a.job, a.folder, wait=not a.no_wait)
    for row in report:
        print(json.dumps(row))
    failed = [row for row in report if row["state"] == "FAILED"]
    if failed:
        raise RmflowError(f"{len(failed)} of {len(report)} job(s) failed; first: SLURM job {failed[0]['job_id']}, "
                          f"{failed[0]['error']} (log: {failed[0]['log']})")


def cmd_plots(a):
    from rmflow import plots

    plots.main(a.leaderboard, a.scores, a.models, a.out_dir)


def cmd_leaderboard(a):
    from rmflow import leaderboard

    files = a.scores or leaderboard.find_scores(a.root)
    options = leaderboard.Options(n_boot=a.bootstrap, seed=a.seed, level=a.level, ci_style=a.ci_style)
    markdown = leaderboard.main(files, a.csv, a.md, a.subsets, a.tex, a.significance, options)
    if a.sources:
        from rmflow.provenance import write_sources

        write_sources(files, a.sources)
    if a.published:
        from rmflow import published

        if not (a.published_csv and a.published_md):
            raise RmflowError("--published needs --published-csv and --published-md", field="published")
        published.main(a.csv, files, a.published, a.published_csv, a.published_md)
    if a.print:
        print(markdown)


def cmd_stage(a):
    import json

    from rmflow import methods

    module = methods.get(a.method, where="--method")
    if not methods.has_hook(module, "run_stage"):
        raise RmflowError(f"method '{a.method}' has no stages (it trains in one step: rmflow train)", field="stage")
    try:
        inputs = json.loads(a.inputs)
    except json.JSONDecodeError as exc:
        raise RmflowError(f"--inputs is not a JSON object ({exc})", field="inputs") from exc
    _threads(a.threads)
    methods.hook(module, "run_stage")(a.stage, a.spec, inputs, a.out)


def cmd_explain(a):
    import json

    from rmflow import methods

    module = methods.get(a.method, where="--method")
    explain = methods.hook(module, "explain")
    if explain is None:
        raise RmflowError(f"method '{a.method}' has no explanation of its scores", field="method")
    try:
        conversation = json.loads(open(a.conversation, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as exc:
        raise RmflowError(f"unreadable conversation JSON ({exc})", file=a.conversation) from exc
    if isinstance(conversation, dict):
        conversation = conversation.get("messages", conversation.get("chosen"))
    print(explain(a.model_dir, conversation, a.top_k))


def cmd_bestofn(a):
    from rmflow.evaluate import bestofn

    _threads(a.threads)
    if a.step == "run":
        import json

        try:
            step_text = json.loads(a.step_text or "{}")
        except json.JSONDecodeError as exc:
            raise RmflowError(f"--step-text is not JSON ({exc})", field="steps") from exc
        bestofn.main(a.method, a.base, a.model_dir, a.data, a.ns, a.subsets, a.seed, a.out, a.steps_data or None,
                     a.batch_size, a.set or None, step_text or None, a.resume_file or None)
    else:
        bestofn.table(a.files, a.csv, a.png, a.svg)


def cmd_rank(a):
    from rmflow import rank

    _threads(a.threads)
    rank.main(a.method, a.model_dir, a.data, a.out_dir, a.mode, a.top_k, a.batch_size)


def cmd_methods(a):
    from rmflow import methods

    for name in methods.available():
        print(name)
