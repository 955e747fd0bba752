#!/usr/bin/env bash
# `make test`: the whole suite as two pytest processes at once, so that both cores stay busy (docs/tests.md).
#
# Much of the suite waits rather than computes: a SLURM job queued and polled, a job's ~7 s of imports on one
# core, a real checkpoint unpacked. One process leaves the second core idle through all of that. The lanes split
# where no session fixture is shared: lane "cluster" holds the SLURM tests (their one cluster), the real-
# checkpoint smoke part, the DeepSpeed tests and the new-method copy (to even the lanes out); lane "suite" holds everything else (the quick workflow run that test_workflow and
# test_envs read is made once, there). Each lane's output goes to its own log; the suite lane's is shown as it
# runs, the cluster lane's when it ends. Either lane failing fails the command.
#
#   scripts/test.sh [pytest options]   e.g. -x, -k name, --durations=30 (given to both lanes)
#   TEST_LANES=1 scripts/test.sh       one process, the whole suite in order (as before the lanes)
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ "${TEST_LANES:-2}" == 1 ]]; then
    exec python -m pytest "$@"
fi

CLUSTER=(tests/slurm tests/workflow/test_smoke.py tests/unit/train/test_deepspeed.py tests/workflow/test_new_method.py)
logs=$(mktemp -d "${TMPDIR:-/tmp}/rmflow-tests.XXXXXX")
ignore=()
for path in "${CLUSTER[@]}"; do ignore+=(--ignore "$path"); done

python -m pytest "$@" --basetemp "$logs/cluster" "${CLUSTER[@]}" > "$logs/cluster.log" 2>&1 &
cluster=$!
# the cluster lane never outlives this script (an interrupted `make test` or CI's timeout stops both)
trap 'kill -- "$cluster" 2>/dev/null; wait "$cluster" 2>/dev/null; echo "== lane cluster (log $logs/cluster.log):"; tail -n 200 "$logs/cluster.log"' INT TERM

echo "== lane suite: tests/ except ${CLUSTER[*]} (lane cluster runs those at the same time: $logs/cluster.log)"
python -m pytest "$@" --basetemp "$logs/suite" "${ignore[@]}" tests
suite_rc=$?
wait "$cluster"
cluster_rc=$?
trap - INT TERM
# 5: pytest collected nothing in that lane (a -k that selects only the other lane's tests)
((suite_rc == 5)) && suite_rc=0
((cluster_rc == 5)) && cluster_rc=0
echo
echo "== lane cluster: ${CLUSTER[*]} (exit $cluster_rc)"
cat "$logs/cluster.log"
echo
echo "== lanes: suite exit $suite_rc, cluster exit $cluster_rc"
if ((suite_rc == 0 && cluster_rc == 0)); then
    rm -rf "$logs/suite" "$logs/cluster"  # the lanes' temporary dirs (GBs); kept, with the logs, when one fails
    exit 0
fi
exit 1
