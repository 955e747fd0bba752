"""A new method is one module and one config entry, nothing else: in a copy of this tree, two toy methods are added
that way (a scalar pair loss through train_scalar, and a method of two stages: a BT warm start, then a hinge
fine-tune from it) and joined to the default run; then
the fast tier, the method contract test and a one-method workflow run of each pass there, unedited."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import QUICK, REPO

pytestmark = pytest.mark.slow

TOY_SCALAR = '''"""Toy: a hinge loss on the reward difference, max(0, margin - (r_chosen - r_rejected))."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.methods.scalar.train import load_scalar_scorer, train_scalar
from rmflow.options import SCORE_BATCH_SIZE

VERSION = 1
KIND = "scalar"


@dataclass(frozen=True)
class Config:
    margin: float = 1.0  # the hinge's margin


def train(spec, out_dir, data=None, init=None):
    import torch

    def pair_loss(batch):
        return torch.relu(spec.options.margin - (batch.scores[0::2, 0] - batch.scores[1::2, 0])).mean()

    train_scalar(spec, out_dir, num_labels=1, pair_loss=pair_loss, data=data, init=init)


def load_scorer(model_dir, device="cpu", batch_size=SCORE_BATCH_SIZE):
    return load_scalar_scorer(model_dir, device, batch_size)
'''


TOY_STAGED = '''"""Toy of two stages: a BT warm start (stage "warm"), then a hinge fine-tune from it (stage "hinge")."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from rmflow.methods.bt import bt_loss
from rmflow.methods.scalar.train import load_scalar_scorer, train_scalar
from rmflow.options import SCORE_BATCH_SIZE
from rmflow.spec import RunSpec

VERSION = 1
KIND = "scalar"
STAGES = ("warm", "hinge")


@dataclass(frozen=True)
class Config:
    margin: float = 1.0  # the second stage's hinge margin


def stage_inputs(plan, method, base, config, stage):
    data = plan.train_data(method, base)
    return {"data": data} if stage == "warm" else {"data": data, "warm": plan.stage_dir(method, base, "warm")}


def run_stage(stage, spec_path, inputs, out_dir):
    import torch

    spec = RunSpec.read(spec_path)

    def warm(batch):
        return bt_loss(batch.scores[0::2, 0], batch.scores[1::2, 0])

    def hinge(batch):
        return torch.relu(spec.options.margin - (batch.scores[0::2, 0] - batch.scores[1::2, 0])).mean()

    train_scalar(spec, out_dir, num_labels=1, pair_loss=warm if stage == "warm" else hinge, data=inputs["data"],
                 init=inputs.get("warm"))


def train(spec, out_dir, data=None, init=None):
    with tempfile.TemporaryDirectory(dir=Path(out_dir).parent) as scratch:
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(spec.to_json())
        data = data or spec.train_data
        run_stage("warm", str(spec_path), {"data": data}, f"{scratch}/warm")
        run_stage("hinge", str(spec_path), {"data": data, "warm": f"{scratch}/warm"}, out_dir)


def load_scorer(model_dir, device="cpu", batch_size=SCORE_BATCH_SIZE):
    return load_scalar_scorer(model_dir, device, batch_size)
'''


def _copy_of_this_tree(dest: Path) -> Path:
    """The tree as a fresh clone would have it, plus what is not committed yet (tracked and untracked files that git
    does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    tree = _copy_of_this_tree(tmp_path_factory.mktemp("newmethod") / "rmflow")
    methods = tree / "src/rmflow/methods"
    (methods / "toy_hinge.py").write_text(TOY_SCALAR)
    (methods / "toy_stages.py").write_text(TOY_STAGED)
    # the config entries: the default runs them (run.methods) with their options (methods.<name>)
    config = tree / "config/config.yaml"
    text = config.read_text()
    text = text.replace("  methods: [bt,", "  methods: [toy_hinge, toy_stages, bt,", 1)
    text = text.replace("\nmethods:\n", "\nmethods:\n  toy_hinge: {options: {margin: 1.0}}\n  toy_stages: {}\n", 1)
    config.write_text(text)
    loaded = yaml.safe_load(text)
    assert loaded["run"]["methods"][:2] == ["toy_hinge", "toy_stages"] and "toy_stages" in loaded["methods"]
    return tree


def _env(tree: Path, **more: str) -> dict:
    path = os.pathsep.join(filter(None, [str(tree / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", **more}


def _pytest(tree: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                           f"--basetemp={tree.parent / 'pytest'}", *args], cwd=tree, capture_output=True, text=True,
                          timeout=1200, env=_env(tree, **env))


def test_the_copy_runs_its_own_code(tree):
    proc = subprocess.run([sys.executable, "-c", "import rmflow.methods as m; print(m.__file__); "
                           "print(sorted(m.available()))"], capture_output=True, text=True, env=_env(tree))
    assert proc.returncode == 0, proc.stderr
    where, names = proc.stdout.splitlines()
    assert where.startswith(str(tree)) and "'toy_hinge'" in names and "'toy_stages'" in names


def test_the_fast_tier_passes_with_the_toys_in_the_default(tree):
    proc = _pytest(tree, "-m", "not slow and not slurm and not gpu", RMFLOW_NO_TRAINING="1")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_the_contract_test_passes_for_both_toys(tree):
    proc = _pytest(tree, "tests/unit/methods/test_method_contract.py", "tests/unit/methods/test_method_registry.py",
                   "-k", "toy_hinge or toy_stages or registry or hook or page")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "toy_hinge" in proc.stdout or " passed" in proc.stdout


@pytest.mark.parametrize("method", ["toy_hinge", "toy_stages"])
def test_a_one_method_run_trains_scores_and_lists_it(tree, method):
    import json

    work = tree.parent / f"work-{method}"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "all", "--cores", "2", "--snakefile", str(tree / "Snakefile"),
           "--directory", str(work), "--configfile", str(tree / "config/config.yaml"), str(QUICK),
           "--config", f"only={method}:tiny_llama"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=_env(tree))
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = work / "results"
    scores = json.loads((results / f"eval/synthetic/{method}/tiny_llama/scores.json").read_text())
    assert scores["method"] == method and 0 <= scores["score"] <= 1
    assert f"tiny_llama/{method}" in (results / "leaderboard.md").read_text()
    assert [p.name for p in (results / "models").iterdir()] == [method]  # nothing else was trained
    if method == "toy_stages":  # each stage ran as its own job of the generic stage rules
        assert "rule stage_warm:" in proc.stdout + proc.stderr and "rule stage_hinge:" in proc.stdout + proc.stderr
        assert (results / "stages/toy_stages/tiny_llama/warm/config.json").is_file()
