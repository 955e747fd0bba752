"""``rmflow serve`` on every method of the default run, over loopback with real HTTP clients: each reward equals the
one ``rmflow evaluate`` wrote into examples.parquet for the same conversation, to 1e-5, one request at a time and
under 16 concurrent clients; scalar methods through /classify, /pooling, /get_reward and group rewards, pairwise
methods through group rewards (round robin over [chosen, rejected] gives evaluate's P(chosen) itself), /classify,
/pooling and /get_reward with a group of completions."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import polars as pl
import pytest
import yaml

from helpers import REPO, serving

TOL = 1e-5
BASE = "tiny_llama"
METHODS = yaml.safe_load((REPO / "config/config.yaml").read_text())["run"]["methods"]


def rows_and_scores(run, method: str) -> tuple[list[dict], pl.DataFrame]:
    results = run / "results"
    rows = [json.loads(line) for line in (results / "data/eval/synthetic.jsonl").read_text().splitlines()]
    examples = pl.read_parquet(results / f"eval/synthetic/{method}/{BASE}/examples.parquet")
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in examples["id"].to_list()[:8]], examples.head(8)


def policy_query(chat: list[dict]) -> str:
    """The conversation as a ChatML policy (Qwen) would hand it to OpenRLHF: its own template, its EOS."""
    from rmflow.serve.chat_text import FAMILIES, jinja_render

    return jinja_render(FAMILIES["chatml"])(chat[:-1], True) + chat[-1]["content"] + "<|im_end|>"


def post(url: str, path: str, body: dict) -> dict:
    answer = httpx.post(url + path, json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
def test_served_rewards_equal_evaluates_scores(finished_run, method, monkeypatch):
    from rmflow.config import load_config
    from rmflow.plan import Plan
    from rmflow.serve.app import Limits, create_app
    from rmflow.serve.engine import RewardEngine
    from rmflow.train.batching import render

    monkeypatch.chdir(finished_run)  # the run's own relative paths (a frozen backbone under results/)
    monkeypatch.setenv("RMFLOW_TOKEN_CACHE", "off")
    plan = Plan(load_config(REPO / "config/config.yaml", schema_path=REPO / "workflow/schemas/config.schema.yaml"))
    engine = RewardEngine(plan.model_dir(method, BASE))
    rows, examples = rows_and_scores(finished_run, method)
    with serving(create_app(engine, Limits(max_wait_ms=20))) as url, ThreadPoolExecutor(16) as pool:
        if engine.kind == "scalar":
            chosen, rejected = examples["score_chosen"].to_list(), examples["score_rejected"].to_list()
            one = post(url, "/classify", {"messages": rows[0]["chosen"], "use_activation": False})
            assert abs(one["data"][0]["probs"][0] - chosen[0]) < TOL
            texts = [render(engine.tokenizer, r["chosen"]) for r in rows[:3]]
            listed = post(url, "/classify", {"input": texts, "use_activation": False})["data"]
            assert max(abs(d["probs"][0] - e) for d, e in zip(listed, chosen)) < TOL
            pooled = post(url, "/pooling", {"messages": rows[1]["rejected"]})["data"][0]["data"]
            assert pooled and all(isinstance(v, float) for v in pooled)
            rewards = post(url, "/get_reward", {"query": [policy_query(r["chosen"]) for r in rows[:3]]})["rewards"]
            assert max(abs(a - b) for a, b in zip(rewards, chosen)) < TOL
            group = post(url, "/v1/group_rewards", {"messages": rows[2]["chosen"][:-1], "responses": [
                rows[2]["chosen"][-1]["content"], rows[2]["rejected"][-1]["content"]]})["rewards"]
            assert abs(group[0] - chosen[2]) < TOL and abs(group[1] - rejected[2]) < TOL
            bodies = [{"messages": r[side], "use_activation": False} for r in rows for side in ("chosen", "rejected")]
            expected = [v for pair in zip(chosen, rejected) for v in pair]
            got = list(pool.map(lambda b: post(url, "/classify", b)["data"][0]["probs"][0], bodies))
        else:
            p_chosen = examples["p_chosen"].to_list()

            def group_of(r: dict) -> dict:
                return {"messages": r["chosen"][:-1],
                        "responses": [r["chosen"][-1]["content"], r["rejected"][-1]["content"]]}
            one = post(url, "/v1/group_rewards", group_of(rows[0]))
            assert one["comparisons"] == 1 and abs(one["rewards"][0] - p_chosen[0]) < TOL
            texts = [render(engine.tokenizer, rows[1][side]) for side in ("chosen", "rejected")]
            listed = post(url, "/classify", {"input": texts})["data"]
            assert abs(listed[0]["probs"][0] - p_chosen[1]) < TOL
            assert abs(listed[1]["probs"][0] - (1 - p_chosen[1])) < TOL
            pooled = post(url, "/pooling", {"input": texts})["data"]
            assert abs(pooled[0]["data"][0] - p_chosen[1]) < TOL
            queries = [policy_query(rows[2][side]) for side in ("chosen", "rejected")]
            rewards = post(url, "/get_reward", {"query": queries, "prompts": ["p", "p"]})["rewards"]
            assert abs(rewards[0] - p_chosen[2]) < TOL
            single = httpx.post(url + "/classify", json={"messages": rows[0]["chosen"]})
            assert single.status_code == 400 and "compares answers" in single.json()["error"]["message"]
            knockout = post(url, "/v1/group_rewards", {**group_of(rows[3]), "mode": "knockout"})
            assert knockout["rewards"] == ([1.0, 0.0] if p_chosen[3] >= 0.5 else [0.0, 1.0])
            expected = p_chosen
            got = list(pool.map(lambda r: post(url, "/v1/group_rewards", group_of(r))["rewards"][0], rows))
        assert max(abs(a - b) for a, b in zip(got, expected)) < TOL  # 16 concurrent clients, shared batches
