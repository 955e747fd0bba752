"""Command options are dataclasses and the parser is built from them: one place for each default."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

import pytest

from rmflow import cli, leaderboard
from rmflow.commands import COMMANDS, scoring
from rmflow.options import Command, add_command, from_namespace, opt


@dataclass(kw_only=True)
class Toy:
    step: str = opt(choices=["a", "b"], positional=True)
    path: str = opt(help="required: no default")
    count: int = opt(3)
    limit: float | None = opt(None)
    flag: bool = opt(False)
    names: list[str] = opt(factory=list)
    must: list[int] = opt()
    job: list[str] | None = opt(None, repeat=True)


def _parse(argv: list[str]) -> Toy:
    parser = argparse.ArgumentParser()
    add_command(parser.add_subparsers(dest="name"), Command("toy", "a toy", Toy, lambda a: None))
    return from_namespace(Toy, parser.parse_args(["toy", *argv]))


def test_a_fields_type_and_default_decide_its_argparse_form():
    parsed = _parse(["b", "--path", "p", "--must", "1", "2", "--limit", "0.5", "--flag", "--names", "x", "y",
                     "--job", "j1", "--job", "j2"])
    assert parsed == Toy(step="b", path="p", count=3, limit=0.5, flag=True, names=["x", "y"], must=[1, 2],
                         job=["j1", "j2"])
    defaults = _parse(["a", "--path", "p", "--must", "7"])
    assert (defaults.count, defaults.limit, defaults.flag, defaults.names, defaults.job) == (3, None, False, [], None)


@pytest.mark.parametrize("argv", [["a", "--must", "1"], ["a", "--path", "p"], ["c", "--path", "p", "--must", "1"],
                                  ["a", "--path", "p", "--must", "x"]])
def test_a_missing_required_option_a_wrong_choice_or_type_is_refused(argv, capsys):
    with pytest.raises(SystemExit):
        _parse(argv)
    assert "error" in capsys.readouterr().err


def test_every_commands_parser_defaults_are_its_dataclass_defaults():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {c.name for c in COMMANDS} <= set(commands)
    for command in COMMANDS:
        for f in dataclasses.fields(command.options):
            expected = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            if expected is dataclasses.MISSING:
                expected = None
            assert commands[command.name].get_default(f.name) == expected, f"{command.name} --{f.name}"


def test_the_leaderboard_commands_defaults_are_the_leaderboards_own():
    command, library = scoring.Leaderboard(), leaderboard.Options()
    assert (command.bootstrap, command.seed, command.level, command.ci_style) == \
        (library.n_boot, library.seed, library.level, library.ci_style)


@pytest.mark.parametrize("command", [["evaluate", "--model-dir", "m", "--method", "bt", "--data", "d", "--eval-set",
                                      "e", "--base", "b", "--out-dir", "OUT"],
                                     ["rank", "--method", "bt", "--model-dir", "m", "--data", "d", "--out-dir", "OUT"]])
@pytest.mark.parametrize("flag", ["--batch-size", "--threads"])
def test_a_non_positive_size_is_refused_not_run_as_one(command, flag, tmp_path, capsys):
    from rmflow.cli import main

    out = tmp_path / "out"
    argv = [str(out) if a == "OUT" else a for a in command] + [flag, "0"]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"field '{flag[2:]}': must be at least 1, not 0" in line, line
    assert not out.exists()
