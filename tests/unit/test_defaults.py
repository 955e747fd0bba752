"""Defaults written once: the config schema, the dataclasses and the CLI agree wherever they name the same option."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from helpers import REPO
from rmflow import cli
from rmflow.evaluate import eval_sets, rewardbench
from rmflow.train.config import PRECISIONS, TrainConfig

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def _subparser(name: str):
    parser = cli.build_parser()
    action = next(a for a in parser._actions if getattr(a, "choices", None) and name in a.choices)
    return action.choices[name]


def _default(name: str, option: str):
    return _subparser(name).get_default(option)


def test_the_schemas_training_options_are_exactly_train_configs_fields():
    train = SCHEMA["definitions"]["train"]["properties"]
    assert set(train) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert all("default" not in spec for spec in train.values()), "TrainConfig holds the training defaults"
    assert tuple(train["precision"]["enum"]) == PRECISIONS
    assert set(train["truncation_side"]["enum"]) == {"left", "right"}
    assert TrainConfig().truncation_side in train["truncation_side"]["enum"]


def test_eval_set_keys_match_the_code_that_reads_them():
    entry = SCHEMA["properties"]["eval_sets"]["additionalProperties"]["properties"]
    assert tuple(entry["benchmark"]["enum"]) == eval_sets.BENCHMARKS
    assert entry["benchmark"]["default"] == _default("evaluate", "benchmark") == eval_sets.BENCHMARKS[0]
    assert tuple(entry["sections"]["enum"]) == eval_sets.SECTION_MAPS
    assert set(eval_sets.SECTION_MAPS) <= set(rewardbench.section_maps())


@pytest.mark.parametrize("section, command, options", [
    ("evaluate", "evaluate", {"tie_rule": "tie_rule", "batch_size": "batch_size"}),
    ("leaderboard", "leaderboard", {"bootstrap": "bootstrap", "seed": "seed", "level": "level",
                                    "ci_style": "ci_style"}),
])
def test_workflow_defaults_equal_the_commands_own(section, command, options):
    props = SCHEMA["properties"][section]["properties"]
    for key, dest in options.items():
        assert props[key]["default"] == _default(command, dest), f"{section}.{key}"
    if "tie_rule" in options:
        assert set(props["tie_rule"]["enum"]) == set(rewardbench.TIE_RULES)


def test_the_scoring_batch_is_written_once():
    """The scoring batch (rows per forward pass) was written as 16 in 28 signatures; each now reads
    options.SCORE_BATCH_SIZE, which the scoring commands and the schema's evaluate.batch_size share."""
    import re

    from rmflow.options import SCORE_BATCH_SIZE

    assert SCHEMA["properties"]["evaluate"]["properties"]["batch_size"]["default"] == SCORE_BATCH_SIZE
    for command in ("evaluate", "bestofn", "rank"):
        assert _default(command, "batch_size") == SCORE_BATCH_SIZE, command
    literal = re.compile(r"\bbatch_size\s*(:\s*int\s*)?=\s*\d|\"batch_size\",\s*\d")
    spelt = [f"{path.relative_to(REPO)}:{i}" for path in sorted((REPO / "src/rmflow").rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert not spelt
