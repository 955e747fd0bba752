"""RunSpec: its training and method options are typed once, where it is built, and its file format is unchanged."""

from __future__ import annotations

import dataclasses
import json

import pytest

from helpers import spec_for
from rmflow import methods
from rmflow.errors import RmflowError
from rmflow.spec import RunSpec
from rmflow.train.config import TrainConfig


def test_dicts_are_parsed_into_the_train_config_and_the_methods_config_and_written_back_as_before():
    spec = spec_for("pair_pm", options={"both_orders": False}, max_length=77)
    assert isinstance(spec.train, TrainConfig) and spec.train.max_length == 77
    assert type(spec.options) is methods.get("pair_pm").Config and spec.options.both_orders is False
    # the file the plan writes holds plain objects, key for key what the dict-valued spec held
    written = json.loads(spec.to_json())
    assert written["train"] == dataclasses.asdict(spec.train)
    assert written["options"] == dataclasses.asdict(spec.options)
    from_dicts = RunSpec(**{**written, "train": dict(written["train"]), "options": dict(written["options"])})
    assert from_dicts.to_json() == spec.to_json()


def test_a_spec_file_is_read_into_the_same_typed_spec(tmp_path):
    spec = spec_for("armo", options={"gate_steps": 7})
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    again = RunSpec.read(path)
    assert again == spec and again.options.gate_steps == 7 and again.train == spec.train


@pytest.mark.parametrize("section, key", [("train", "lerning_rate"), ("options", "gate_stepz")])
def test_a_misspelt_option_in_a_spec_file_is_refused_naming_the_file_and_the_key(tmp_path, section, key):
    values = json.loads(spec_for("armo").to_json())
    values[section][key] = 1
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(values))
    with pytest.raises(RmflowError) as error:
        RunSpec.read(path)
    assert str(path) in str(error.value) and key in str(error.value)
