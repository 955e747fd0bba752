"""When jobs fail, the run still ends in a leaderboard: the workflow's ``onerror`` handler calls
``gather_what_exists``, which finds, for every planned score and best-of-N file that is missing, the job upstream of
it that failed (in Snakemake's own DAG), writes that into a manifest and runs ``rmflow gather`` over it: the
leaderboard, its subset/significance/published tables, the figures and the best-of-N table from every file that
exists, plus ``leaderboard_missing.csv`` (rmflow.leaderboard.missing).

Those files are written outside Snakemake's bookkeeping. Every planned score and best-of-N file is a target of
``all`` itself (Plan.targets), so the next run still sees the missing ones as wanted, makes them, and rebuilds the
tables through the normal rules from the newer inputs. Imports no torch and no polars: it runs inside the Snakemake
process, which may have neither; ``rmflow gather`` runs in a subprocess as any job does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rmflow.plan import paths
from rmflow.plan.paths import RESULTS

MANIFEST = f"{RESULTS}/logs/gather/planned.json"
GATHER_LOG = f"{RESULTS}/logs/gather/gather.log"


def _done(job) -> bool:
    return all(os.path.exists(str(f)) for f in job.output)


def _describe(job) -> dict:
    wildcards = ",".join(f"{k}={v}" for k, v in job.wildcards.items())
    logs = [str(f) for f in job.log]
    record = {"rule": job.rule.name, "job": f"{job.rule.name}[{wildcards}]" if wildcards else job.rule.name,
              "log": logs[0] if logs else ""}
    if not record["log"] or not os.path.exists(record["log"]):
        record["error"] = "did not run: the run ended first (keep-going off, or the controller was stopped)" \
            if record["log"] else "failed (the rule keeps no log)"
    return record


def failures_upstream(dag, outputs: list[str]) -> dict[str, dict]:
    """For each missing output, the first job upstream of it that could run (every input present) but left its own
    outputs missing: the job that failed (or never ran), with its rule, wildcards and log."""
    producers = {str(f): job for job in dag.jobs for f in job.output}
    found: dict[str, dict] = {}
    for output in outputs:
        if os.path.exists(output):
            continue
        job = producers.get(output)
        if job is None:
            found[output] = {"rule": "", "job": "", "log": "", "error": "not in this run's DAG"}
            continue
        stack, seen, causes = [job], set(), []
        while stack:
            current = stack.pop()
            if current in seen or _done(current):
                continue
            seen.add(current)
            blocked = [dep for dep in dag.job_dependencies(current) if not _done(dep)]
            if blocked:
                stack.extend(blocked)
            else:
                causes.append(current)
        causes.sort(key=lambda j: (j.rule.name, str(j.wildcards)))
        found[output] = _describe(causes[0]) if causes else {"rule": job.rule.name, "job": "", "log": "",
                                                            "error": "its inputs exist; rerun the workflow"}
    return found


def planned_outputs(plan) -> list[dict]:
    """Every planned score (and best-of-N file) as a leaderboard_missing.csv row would name it."""
    rows = [{"benchmark": plan.benchmark_of(e), "eval_set": e, "method": m, "base": b,
             "output": paths.path("scores", eval_set=e, method=m, base=b)} for e, m, b in plan.evaluations()]
    sets = plan.config.get("bestofn", {}).get("sets") or []
    rows += [{"benchmark": "bestofn", "eval_set": s, "method": m, "base": b,
              "output": paths.path("bestofn", set=s, method=m, base=b)} for s in sets for m, b in plan.bestofn_pairs()]
    return rows


def manifest(plan, dag, published: str) -> dict:
    planned = planned_outputs(plan)
    return {"planned": planned, "failures": failures_upstream(dag, [p["output"] for p in planned]),
            "leaderboard": {**plan.config["leaderboard"], "published": published},
            "models": plan.model_dir_args(), "results": RESULTS}


def gather_what_exists(dag, plan, published: str) -> None:
    """The ``onerror`` handler's one call. Never raises: a failure here must not hide the run's own error."""
    try:
        content = manifest(plan, dag, published)
        Path(MANIFEST).parent.mkdir(parents=True, exist_ok=True)
        Path(MANIFEST).write_text(json.dumps(content, indent=1), encoding="utf-8")
        python = shutil.which("python") or sys.executable
        with open(GATHER_LOG, "w", encoding="utf-8") as out:
            code = subprocess.run([python, "-m", "rmflow", "gather", "--manifest", MANIFEST], stdout=out,
                                  stderr=subprocess.STDOUT, check=False).returncode
        missing = f"{RESULTS}/leaderboard_missing.csv"
        if code == 0:
            print(f"rmflow: jobs failed; the leaderboard was gathered from the scores that exist, and the planned "
                  f"rows without one are listed in {missing} (log: {GATHER_LOG})", file=sys.stderr)
        else:
            print(f"rmflow: jobs failed, and gathering what exists failed too (exit {code}): see {GATHER_LOG}",
                  file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - report and let Snakemake report the run's own failure
        print(f"rmflow: jobs failed, and gathering what exists failed too: {type(exc).__name__}: {exc}",
              file=sys.stderr)
