"""Command options as dataclasses: each ``rmflow <command>`` declares its options once, as one dataclass whose
fields carry their defaults and help, and the argparse parser is built from it (``add_options``). The command then
receives an instance of that dataclass, so a default lives in one place and tests can read it from the class.

A field's type decides its argparse form: ``bool`` is a flag (``store_true``), ``list[...]`` takes several values
(``nargs``, ``+`` when required), ``X | None`` is optional with default None, a field without a default is
required. ``opt(positional=True)`` makes it positional (a step name).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable

from rmflow.errors import RmflowError

# rows per scoring forward pass: the default of every scorer and scoring command (evaluate.batch_size in the schema)
SCORE_BATCH_SIZE = 16


def opt(default: Any = MISSING, help: str | None = None, *, choices: list | tuple | None = None,
        nargs: str | None = None, positional: bool = False, factory: Callable[[], Any] | None = None,
        repeat: bool = False, short: str | None = None, writes: str | None = None):
    """A command option: its default (none: required), help, choices; ``factory`` for a list default;
    ``repeat``: a list given one flag at a time (``--job A --job B``); ``short``: a one-letter alias (``-v``);
    ``writes``: the option names an output, a "file" or a "dir" (checked writable before the command starts)."""
    metadata = {"help": help, "choices": choices, "nargs": nargs, "positional": positional, "repeat": repeat,
                "short": short, "writes": writes}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def set_threads(n: int | None) -> None:
    """torch's intra-op threads (the rule's ``threads``); None leaves torch's own choice."""
    if n:
        import torch

        torch.set_num_threads(n)


@dataclass(kw_only=True)
class Compute:
    """Options every scoring step shares: rows per forward pass and torch threads (the rule's threads)."""

    batch_size: int = opt(SCORE_BATCH_SIZE, "rows per forward pass")
    threads: int | None = opt(None, "torch threads (default: torch's own)")

    def __post_init__(self):
        # 0 or a negative number would run as 1 (or not at all) without a word
        if self.batch_size < 1:
            raise RmflowError(f"must be at least 1, not {self.batch_size}", field="batch-size")
        if self.threads is not None and self.threads < 1:
            raise RmflowError(f"must be at least 1, not {self.threads}", field="threads")


@dataclass(kw_only=True)
class NoOptions:
    """A command that takes none (it lists something)."""


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: type  # a dataclass (kw_only) of the command's options
    run: Callable[[Any], None]  # run(options)


def _element(annotation) -> tuple[type, bool]:
    """(the value type argparse converts to, whether the option takes a list); ``X | None`` is read as X."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def add_options(parser: argparse.ArgumentParser, options: type) -> None:
    hints = typing.get_type_hints(options)
    for f in dataclasses.fields(options):
        meta, (kind, many) = f.metadata, _element(hints[f.name])
        required = f.default is MISSING and f.default_factory is MISSING
        default = f.default_factory() if f.default_factory is not MISSING else (None if required else f.default)
        kwargs = {"help": meta.get("help")}
        if meta.get("choices"):
            kwargs["choices"] = list(meta["choices"])
        if kind is bool:
            kwargs.update(action="store_true", default=default)
        elif meta.get("repeat"):
            kwargs.update(action="append", type=kind, default=default)
        else:
            kwargs.update(type=kind, default=default)
            if many:
                kwargs["nargs"] = meta.get("nargs") or ("+" if required else "*")
        if meta.get("positional"):
            parser.add_argument(f.name, **kwargs)
            continue
        if required:
            kwargs["required"] = True
        flags = [meta["short"]] if meta.get("short") else []
        parser.add_argument(*flags, f"--{f.name.replace('_', '-')}", dest=f.name, **kwargs)


def outputs(values) -> list[tuple[str, str, str]]:
    """(option, path, "file" | "dir") for every output option a command was given (``opt(writes=...)``)."""
    found = []
    for f in dataclasses.fields(values):
        kind, value = f.metadata.get("writes"), getattr(values, f.name)
        if kind and value:
            found += [(f.name, str(v), kind) for v in (value if isinstance(value, list) else [value])]
    return found


def from_namespace(options: type, namespace: argparse.Namespace):
    """The command's options dataclass from what argparse parsed."""
    return options(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(options)})


def add_command(subparsers, command: Command) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(command.name, help=command.help)
    add_options(parser, command.options)
    parser.set_defaults(command=command)
    return parser
