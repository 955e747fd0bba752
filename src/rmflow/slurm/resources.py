"""What each rule asks of SLURM, checked against the cluster before anything is submitted.

``sbatch`` rejects a wrong request only when the job is submitted, often hours into a workflow and with a terse
"invalid partition specified" or "Requested node configuration is not available". The Snakefile's ``onstart``
runs :func:`check_against_cluster` under the SLURM executor, so a profile naming a partition the cluster lacks, or
a rule asking for more GPUs (or CPUs) than any node of its partition has, stops the run at once with the rule, the
resource and the limit. :func:`render_sbatch` shows the exact ``sbatch`` line the executor plugin would build.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from rmflow.errors import RmflowError

_GRES_GPUS = re.compile(r"^gpu(?::[A-Za-z0-9_.]+)?:(\d+)$")


def requested_gpus(resources: dict) -> int:
    """GPUs per node a rule asks for through ``gres`` ("gpu:4", "gpu:a100:4"), ``gpus`` or ``gpu``."""
    total = 0
    for item in str(resources.get("gres") or "").split(","):
        match = _GRES_GPUS.match(item.strip())
        if match:
            total += int(match.group(1))
        elif item.strip() == "gpu":
            total += 1
    for key in ("gpus", "gpu"):
        value = resources.get(key)
        if value:
            total = max(total, int(str(value).split(":")[-1]))
    return total


@dataclass(frozen=True)
class Partition:
    name: str
    max_cpus: int  # per node
    max_gpus: int  # per node
    max_mem_mb: int  # per node
    max_time_min: float | None = None  # the partition's MaxTime (None: unlimited or unknown)
    gpu_types: frozenset = frozenset()  # GRES types its nodes offer ("a100"); empty: untyped or none


def slurm_minutes(text: str) -> float | None:
    """SLURM's time format ([days-]hours:minutes:seconds, minutes:seconds, minutes) in minutes; None: unlimited."""
    text = text.strip()
    if not text or text.lower() in ("infinite", "unlimited", "n/a"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [float(p) for p in rest.split(":")]
    if len(parts) == 1:
        minutes = parts[0] * 60 if days else parts[0]  # "3-12" is days-hours
    elif len(parts) == 2:
        minutes = parts[0] + parts[1] / 60 if not days else parts[0] * 60 + parts[1]
    else:
        minutes = parts[0] * 60 + parts[1] + parts[2] / 60
    return minutes + (float(days) * 1440 if days else 0)


def gpu_types(gres: str) -> set[str]:
    """GPU types a GRES string names (sinfo's "gpu:a100:4(S:0-1)" or a request's "gpu:a100:4")."""
    return {m.group(1).lower() for part in gres.split(",") if (m := re.match(r"gpu:([^:(]+):\d+", part))}


def _gpus_in(gres: str) -> int:
    found = [int(m.group(1)) for part in gres.split(",") if (m := re.match(r"gpu(?::[^:(]+)?:(\d+)", part))]
    return sum(found)


def cluster_partitions(sinfo: str = "sinfo") -> dict[str, Partition]:
    """Every partition with the largest node it offers, from ``sinfo`` (one line per partition and node kind)."""
    try:
        out = subprocess.run([sinfo, "-h", "-o", "%R|%c|%G|%m|%l"], capture_output=True, text=True, check=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RmflowError(f"cannot ask the cluster for its partitions ({sinfo} -h -o ...): {exc}") from exc
    partitions: dict[str, Partition] = {}
    for line in out.splitlines():
        name, cpus, gres, mem, limit = (line.split("|") + [""])[:5]
        name = name.rstrip("*")
        old = partitions.get(name, Partition(name, 0, 0, 0))
        partitions[name] = Partition(name, max(old.max_cpus, int(cpus.rstrip("+"))),
                                     max(old.max_gpus, _gpus_in(gres)), max(old.max_mem_mb, int(mem.rstrip("+"))),
                                     slurm_minutes(limit), old.gpu_types | gpu_types(gres))
    return partitions


def check_rule(rule: str, resources: dict, partitions: dict[str, Partition], where: str) -> list[str]:
    """Every way one rule's request cannot be met; ``where`` names the file its resources came from."""
    problems = []
    name = resources.get("slurm_partition")
    gpus = requested_gpus(resources)
    processes = int(resources.get("processes") or 1)
    if gpus and processes > gpus:
        problems.append(f"rule {rule}: processes={processes} but only {gpus} GPU(s) requested "
                        f"(gres={resources.get('gres')!r}); one process per GPU")
    if not name:
        return problems
    partition = partitions.get(name)
    if partition is None:
        problems.append(f"rule {rule}: slurm_partition '{name}' does not exist on this cluster "
                        f"(partitions: {', '.join(sorted(partitions)) or 'none'}); set it in {where}")
        return problems
    if gpus > partition.max_gpus:
        problems.append(f"rule {rule}: asks for {gpus} GPU(s) per node (gres={resources.get('gres')!r}) but the "
                        f"largest node in partition '{name}' has {partition.max_gpus}; lower it in {where}")
    cpus = int(resources.get("cpus_per_task") or 0)
    if cpus > partition.max_cpus:
        problems.append(f"rule {rule}: cpus_per_task={cpus} but the largest node in partition '{name}' has "
                        f"{partition.max_cpus} CPUs; lower it in {where}")
    mem = int(resources.get("mem_mb") or 0)
    if partition.max_mem_mb and mem > partition.max_mem_mb:
        problems.append(f"rule {rule}: mem_mb={mem} but the largest node in partition '{name}' has "
                        f"{partition.max_mem_mb} MB; lower it in {where}")
    return problems


def env_file_lists(env_file: str, package: str) -> bool:
    """Whether a conda env file's dependencies (conda or pip) name ``package``."""
    try:
        spec = yaml.safe_load(Path(env_file).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RmflowError(f"unreadable conda env file ({exc})", file=env_file) from exc
    names = []
    for dep in spec.get("dependencies") or []:
        for item in (dep.get("pip") or []) if isinstance(dep, dict) else [dep]:
            names.append(re.split(r"[<>=!~\[ ;]", str(item).strip(), maxsplit=1)[0].lower())
    return package.lower() in names


def deepspeed_problems(jobs: list[tuple[str, str, dict, str | None, bool]],
                       env_files: dict[str, str] | None = None) -> list[str]:
    """Training jobs that ask for DeepSpeed where it cannot run: ``(rule, "method/base", resources, deepspeed JSON,
    deepspeed_fallback)`` each. DeepSpeed runs on GPUs and, slowly, on CPUs; what stops it is a missing package.
    Where the jobs run is what is judged: under ``--sdm conda`` (``env_files``: rule -> its env file) the rule's env
    file must list deepspeed, whatever the submitting interpreter has; otherwise the jobs run in this environment."""
    import importlib.util

    wanted = sorted(j for j in jobs if j[3] and not j[4])
    if env_files is not None:
        return [f"rule {rule}: {run} asks for DeepSpeed ({deepspeed}) but the rule's conda env file "
                f"{env_files[rule]} does not list deepspeed (add it, or set train.deepspeed_fallback: true)"
                for rule, run, resources, deepspeed, fallback in wanted
                if rule in env_files and not env_file_lists(env_files[rule], "deepspeed")]
    if importlib.util.find_spec("deepspeed") is not None:
        return []
    return [f"rule {rule}: {run} asks for DeepSpeed ({deepspeed}) but it is not installed in this environment "
            "(pip install 'rmflow[gpu]', or set train.deepspeed_fallback: true)"
            for rule, run, resources, deepspeed, fallback in wanted]


def check_against_cluster(rule_resources: dict[str, dict], where: str, partitions: dict | None = None,
                          more_problems: list[str] | None = None) -> None:
    """Raise one error listing every rule whose request this cluster cannot meet (and ``more_problems``)."""
    partitions = cluster_partitions() if partitions is None else partitions
    problems = [p for rule, res in sorted(rule_resources.items()) for p in check_rule(rule, res, partitions, where)]
    problems += more_problems or []
    if problems:
        raise RmflowError("nothing submitted: the run cannot finish as planned on this cluster:\n  "
                          + "\n  ".join(problems))


class _Resources(dict):
    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


@dataclass
class _Job:
    name: str
    resources: _Resources
    threads: int


def render_sbatch(rule: str, resources: dict, threads: int = 1, requeue: bool = False,
                  workdir: str = ".") -> str:
    """The ``sbatch`` line snakemake-executor-plugin-slurm builds for a job of ``rule`` with these resources."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    job = _Job(rule, _Resources(resources), threads)
    partition = f"-p {resources['slurm_partition']}" if resources.get("slurm_partition") else ""
    params = {"run_uuid": "RUN", "slurm_logfile": f".snakemake/slurm_logs/rule_{rule}/%j.log",
              "comment_str": f"rule_{rule}", "account": "", "partition": partition, "workdir": workdir}
    settings = SimpleNamespace(requeue=requeue, no_requeue=False, qos=None, reservation=None)
    return " ".join((get_submit_command(job, params, settings) + set_gres_string(job)).split())
