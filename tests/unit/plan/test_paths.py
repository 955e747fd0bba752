"""One path table (rmflow.plan.paths): the rules read its patterns, the code formats them; no one writes a path of
its own for an output the table lists."""

from __future__ import annotations

import re

from helpers import DEFAULT, REPO
from rmflow.config import load_config
from rmflow.plan import Plan, paths


def test_a_pattern_formats_into_the_path_the_plan_uses():
    plan = Plan(load_config(DEFAULT, schema_path=REPO / "workflow/schemas/config.schema.yaml"))
    assert paths.pattern("model") == "results/models/{method}/{base}"
    assert plan.model_dir("bt", "tiny_llama") == paths.path("model", method="bt", base="tiny_llama")
    assert plan.train_data("bt", "tiny_llama") == paths.path("prepared", dataset="synthetic")
    assert plan.stage_dir("armo", "tiny_llama", "probe") == paths.path("stage", method="armo", base="tiny_llama",
                                                                        stage="probe")
    assert set(plan.score_files()) == {paths.path("scores", eval_set=e, method=m, base=b)
                                       for e, m, b in plan.evaluations()}


def test_no_rule_or_plan_module_spells_out_a_path_the_table_holds():
    # each table entry's fixed start ("models/", "data/prepared/", "specs/runs/", ...), as a rule would write it
    prefixes = {re.split(r"\{", p, maxsplit=1)[0] for p in paths.PATHS.values()}
    sources = [*(REPO / "workflow/rules").glob("*.smk"), REPO / "Snakefile", *(REPO / "src/rmflow/plan").glob("*.py")]
    found = {str(s.relative_to(REPO)): prefix for s in sources if s.name != "paths.py"
             for prefix in prefixes if f'{{RESULTS}}/{prefix}' in s.read_text()}
    assert not found, found


def test_no_rule_builds_an_output_path_onto_a_pattern():
    # a file under a table entry gets its own entry: `pattern("rank") + "/stats.json"` is what `snakemake --lint`
    # refuses (an absolute-looking "/stats.json"), and a second spelling of where the file lives
    rules = [*(REPO / "workflow/rules").glob("*.smk"), REPO / "Snakefile"]
    built = {str(r.relative_to(REPO)) for r in rules if re.search(r"paths\.pattern\([^)]*\)\s*\+", r.read_text())}
    assert not built, built
