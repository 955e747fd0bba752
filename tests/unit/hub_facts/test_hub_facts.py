"""The recorded facts of the paper recipe's hub repositories (rmflow.hub_facts): one file per hub id the recipe
names, every fact with its source, and the planner's reading of a card that gives only a size bucket."""

from __future__ import annotations

import yaml

from helpers import DEFAULT, REPO


def test_every_hub_id_of_the_paper_recipe_has_a_facts_file_whose_every_fact_names_its_source():
    from rmflow import hub_facts
    from rmflow.config import merge_layers
    from rmflow.rehearsal.writer import hub_ids

    config = merge_layers([yaml.safe_load(p.read_text()) for p in (DEFAULT, REPO / "config/paper.yaml")])
    wanted = hub_ids(config)
    recorded = hub_facts.all_facts()
    assert wanted["model"] | wanted["dataset"] <= set(recorded), sorted((wanted["model"] | wanted["dataset"]) -
                                                                        set(recorded))
    for repo_id, content in recorded.items():
        assert hub_facts.file_of(repo_id).is_file() and content["type"] in ("model", "dataset")
        kind = "model" if repo_id in wanted["model"] else "dataset"
        assert content["type"] == kind, repo_id
        facts = {k: v for k, v in content.items() if k not in ("id", "type", "data_dirs")}
        facts.update({f"{d}.{k}": v for d, entry in (content.get("data_dirs") or {}).items() for k, v in entry.items()})
        for name, fact in facts.items():
            assert isinstance(fact, dict) and "value" in fact and fact.get("source"), (repo_id, name)
    assert hub_facts.value("RLHFlow/ArmoRM-Llama3-8B-v0.1", "custom_code")["imports"][1] == \
        "from transformers.models.llama.modeling_llama import LLAMA_INPUTS_DOCSTRING"


def test_a_card_that_gives_only_a_size_bucket_is_planned_at_its_upper_end_and_says_so():
    from rmflow import hub_facts

    rows, estimate, why = hub_facts.rows("RLHFlow/pair_data_v2_80K_wsafety")
    assert (rows, estimate) == (1_000_000, True)
    assert "size bucket 100,000-1,000,000" in why and "upper end" in why and "huggingface.co/datasets" in why
    assert hub_facts.rows("allenai/reward-bench")[:2] == (2985, True)
    assert hub_facts.rows("nvidia/HelpSteer2", "preference")[0] == 7000
    assert hub_facts.rows("no/such-repo") is None
    shape = hub_facts.config_json("RLHFlow/ArmoRM-Llama3-8B-v0.1")
    assert shape["vocab_size"] == 128257 and shape["architectures"] == ["LlamaForRewardModelWithGating"]
