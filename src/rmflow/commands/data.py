"""Data commands: the synthetic suite, preparing training and eval sets, samples, the workflow's JSON files."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.errors import RmflowError
from rmflow.options import Command, NoOptions, opt


@dataclass(kw_only=True)
class MakeSynthetic:
    seed: int = opt(0)
    n_train: int = opt(160, "train pairs per subset")
    n_test: int = opt(40, "test rows per subset")
    out_dir: str = opt(writes="dir")


def make_synthetic(a: MakeSynthetic) -> None:
    from rmflow.data import synth

    synth.main(a.seed, a.n_train, a.n_test, a.out_dir)


@dataclass(kw_only=True)
class PrepareData:
    source: list[str] = opt(help="local .jsonl/.json/.parquet file or folder, or a hub dataset id; several are "
                                 "concatenated")
    name: str | None = opt(None, "the data set's config name (named in errors)")
    format: str = opt("standard", "a layout name; `rmflow formats` lists them")
    split: str = opt("train")
    revision: str | None = opt(None)
    data_dir: str | None = opt(None, "hub data sets: the data_dir inside the repository")
    where: str | None = opt(None, "keep only rows whose columns equal these values: 'split=train [col=value ...]'")
    on_invalid: str = opt("error", choices=["error", "skip"])
    out: str = opt(writes="file")
    report: str = opt(writes="file")


def prepare_data(a: PrepareData) -> None:
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


@dataclass(kw_only=True)
class PrepareEval:
    name: str | None = opt(None, "the eval set's name (written into the report)")
    data: list[str] = opt(help="local files/folders or hub ids (allenai/reward-bench); several are concatenated",
                          nargs="+")
    benchmark: str = opt(help="rewardbench_v1 | rewardbench_v2 | rm_bench | judgebench | rmb | ppe_preference | "
                              "ppe_correctness | processbench")
    split: list[str] = opt(factory=lambda: ["filtered"], help="one split, or several read from every source",
                           nargs="+")
    revision: list[str] | None = opt(None, "one revision for all sources, or one per source", nargs="+")
    out: str = opt(help="the rows, JSON lines", writes="file")
    report: str = opt(writes="file")


def prepare_eval(a: PrepareEval) -> None:
    from rmflow.evaluate import eval_sets

    source, split, revision = eval_sets.from_options(a.data, a.split, a.revision)
    eval_sets.prepare(source, a.benchmark, split, revision, a.out, a.report, name=a.name)


@dataclass(kw_only=True)
class MakeSamples:
    shared: str = opt(help="the folder of real rows the samples are cut from (rmflow.data.samples names its files)")
    out_dir: str = opt(writes="dir")
    sizes: str = opt("", "'pairs=32 step_rows=32 ...' (rmflow.data.samples.DEFAULTS)")


def make_samples(a: MakeSamples) -> None:
    from rmflow.data import samples

    sizes = {}
    for item in (a.sizes or "").split():
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise RmflowError(f"--sizes takes NAME=INTEGER items, not '{item}'", field="sizes")
        sizes[key] = int(value)
    samples.main(a.shared, a.out_dir, sizes)


@dataclass(kw_only=True)
class WriteJson:
    out: str = opt(writes="file")
    data: str = opt(help="the value as one line of JSON (give it as --data=...)")
    yaml: bool = opt(False, "write it as YAML, keys in their order")


def write_json(a: WriteJson) -> None:
    import json

    from rmflow.io import write_json, write_text

    obj = json.loads(a.data)
    if a.yaml:
        import yaml

        write_text(a.out, yaml.safe_dump(obj, sort_keys=False))
    else:
        write_json(a.out, obj)
    print(f"wrote {a.out}")


def formats(a: NoOptions) -> None:
    from rmflow.data.formats import FORMATS

    for name, spec in FORMATS.items():
        print(f"{name:<24}{spec.kind:<14}{spec.layout}")


COMMANDS = [
    Command("make-synthetic", "generate the synthetic preference suite", MakeSynthetic, make_synthetic),
    Command("prepare-data", "load, convert and validate rows of any format into canonical parquet", PrepareData,
            prepare_data),
    Command("prepare-eval", "load, convert and validate an eval set's rows once (before any GPU job)", PrepareEval,
            prepare_eval),
    Command("make-samples", "small local samples of the paper recipe's hub data sets, in their layouts, from a "
                            "folder of real rows (tests/configs/paper-smoke.yaml)", MakeSamples, make_samples),
    Command("write-json", "write a value the workflow computed (a run spec, the config used) to a file, atomically, "
                          "as rmflow writes JSON (or YAML)", WriteJson, write_json),
    Command("formats", "list the data formats prepare-data reads and the kind of rows each gives", NoOptions,
            formats),
]
