"""The sbatch lines the SLURM profile produces for each training preset, and the resource checks that stop a run
before anything is submitted."""

from __future__ import annotations

import pytest
import yaml

from helpers import REPO
from rmflow.errors import RmflowError
from rmflow.slurm.resources import Partition, check_against_cluster, render_sbatch, requested_gpus
from rmflow.slurm.submit import executor_parameters, profile_resources

PROFILE = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())


def rule_resources(rule: str) -> dict:
    return {**PROFILE["default-resources"], **PROFILE["set-resources"][rule]}


@pytest.mark.parametrize("rule, partition, gres, mem, hours", [
    ("train_a100_80g", "gpu-a100", "gpu:a100:4", 480000, 72),  # RRM plans at ~50 h (rmflow plan)
    ("train_a40_48g", "gpu-a40", "gpu:a40:4", 240000, 72),
])
def test_training_presets_render_the_intended_sbatch_line(rule, partition, gres, mem, hours):
    line = render_sbatch(rule, rule_resources(rule), threads=PROFILE["set-threads"][rule],
                         requeue=PROFILE["slurm-requeue"])
    assert f"-p {partition}" in line and f"--gres={gres}" in line
    assert f"--mem {mem}" in line and f"-t {hours * 60}" in line
    assert "--cpus-per-task=32" in line and "--nodes=1" in line and "--requeue" in line
    # one task that starts its own 4 processes: no --ntasks-per-gpu (which would start 4 tasks x 32 CPUs)
    assert "--ntasks-per-gpu" not in line
    assert rule_resources(rule)["processes"] == requested_gpus(rule_resources(rule)) == 4


def test_the_profiles_commented_admin_entries_render_when_uncommented():
    """The account, QoS and node-feature lines the profile ships commented out are real resource names: uncommented
    (by a regex, exactly as an admin would), the executor's own code puts them on the sbatch line."""
    import re

    text = (REPO / "profiles/slurm/config.yaml").read_text()
    opened = yaml.safe_load(re.sub(r"^(\s*)# ((slurm_account|qos|constraint): )", r"\1\2", text, flags=re.M))
    assert opened["keep-going"] is True
    resources = {**opened["default-resources"], **opened["set-resources"]["train_a100_80g"]}
    line = render_sbatch("train_a100_80g", resources, threads=32, requeue=True)
    assert "-C a100_80gb" in line and "--qos=long" in line, line
    assert resources["slurm_account"] == "my-lab"  # the plugin adds -A itself (get_account_arg), after this line


def test_cpu_rules_render_ntasks_and_no_gpu():
    line = render_sbatch("prepare_data", rule_resources("prepare_data"))
    assert "--ntasks=1" in line and "--gres" not in line and "-p cpu" in line


def test_requested_gpus_forms():
    assert requested_gpus({"gres": "gpu:a100:4"}) == 4
    assert requested_gpus({"gres": "gpu:2"}) == 2
    assert requested_gpus({"gpus": 3}) == 3
    assert requested_gpus({"gres": "tmpfs:10G"}) == 0


CLUSTER = {"debug": Partition("debug", max_cpus=2, max_gpus=4, max_mem_mb=20000)}


def test_unknown_partition_names_the_rule_and_the_choices():
    with pytest.raises(RmflowError) as err:
        check_against_cluster({"train_a100_80g": rule_resources("train_a100_80g")}, "profiles/slurm/config.yaml",
                              CLUSTER)
    message = str(err.value)
    assert "rule train_a100_80g: slurm_partition 'gpu-a100' does not exist" in message
    assert "partitions: debug" in message and "profiles/slurm/config.yaml" in message


def test_more_gpus_than_any_node_and_more_processes_than_gpus():
    too_many = {"slurm_partition": "debug", "gres": "gpu:8", "processes": 8, "cpus_per_task": 1}
    with pytest.raises(RmflowError, match=r"asks for 8 GPU\(s\) per node .* has 4"):
        check_against_cluster({"train_x": too_many}, "p.yaml", CLUSTER)
    mismatch = {"slurm_partition": "debug", "gres": "gpu:2", "processes": 4}
    with pytest.raises(RmflowError, match=r"processes=4 but only 2 GPU\(s\) requested"):
        check_against_cluster({"train_y": mismatch}, "p.yaml", CLUSTER)
    check_against_cluster({"ok": {"slurm_partition": "debug", "gres": "gpu:4", "processes": 4}}, "p.yaml", CLUSTER)


def test_submit_uses_the_profiles_presets():
    resources = profile_resources(str(REPO / "profiles/slurm"), "train_a40_48g")
    params = executor_parameters(resources)
    assert params == {"timeout_min": 4320, "nodes": 1, "tasks_per_node": 1, "cpus_per_task": 32,
                      "slurm_partition": "gpu-a40", "mem_gb": 235, "slurm_gres": "gpu:a40:4"}
    with pytest.raises(RmflowError, match="no set-resources entry 'train_h100'"):
        profile_resources(str(REPO / "profiles/slurm"), "train_h100")


def test_the_deepspeed_preflight_judges_where_the_jobs_run(tmp_path):
    """Under --sdm conda the jobs run in the rule's env: its env file decides, not the submitting interpreter (which
    may lack DeepSpeed while the env has it, or the other way round)."""
    from rmflow.slurm.resources import deepspeed_problems, env_file_lists

    train = [("train_a100_80g", "bt/llama3_8b_instruct", {}, "config/deepspeed/zero3.json", False),
             ("train_cpu", "bt/tiny", {}, None, False)]
    shipped = str(REPO / "envs/train.yaml")
    assert env_file_lists(shipped, "deepspeed") and env_file_lists(shipped, "DeepSpeed")
    assert deepspeed_problems(train, {"train_a100_80g": shipped, "train_cpu": shipped}) == []
    lacking = tmp_path / "train.yaml"
    lacking.write_text("dependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - torch>=2.4\n      - deepspeedx\n")
    [problem] = deepspeed_problems(train, {"train_a100_80g": str(lacking), "train_cpu": str(lacking)})
    assert problem.startswith("rule train_a100_80g: bt/llama3_8b_instruct asks for DeepSpeed")
    assert str(lacking) in problem
    fallback = [(*train[0][:4], True)]
    assert deepspeed_problems(fallback, {"train_a100_80g": str(lacking)}) == []
    assert deepspeed_problems(train) == []  # no conda: this interpreter, which has DeepSpeed here


# ---- SLURM: CPUs and memory per node -----------------------------------------------------------------------------
def test_cpu_and_memory_beyond_the_largest_node_are_named():
    from rmflow.slurm.resources import Partition, check_rule

    partitions = {"gpu": Partition("gpu", max_cpus=16, max_gpus=4, max_mem_mb=64000)}
    problems = check_rule("train_x", {"slurm_partition": "gpu", "cpus_per_task": 32, "mem_mb": 480000},
                          partitions, "profiles/slurm/config.yaml")
    assert problems == [
        "rule train_x: cpus_per_task=32 but the largest node in partition 'gpu' has 16 CPUs; lower it in "
        "profiles/slurm/config.yaml",
        "rule train_x: mem_mb=480000 but the largest node in partition 'gpu' has 64000 MB; lower it in "
        "profiles/slurm/config.yaml"]
    assert check_rule("ok", {"slurm_partition": "gpu", "cpus_per_task": 16, "mem_mb": 64000}, partitions, "p") == []
