"""``rmflow serve`` over loopback with real HTTP clients, on a BT model trained through the real entry point: each
wire format, rewards equal to the in-process scorer's at batch 1 and under 16 concurrent clients, policy-templated
queries, and bad requests answered 4xx with a message."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from helpers import serving

TOL = 1e-5
CHATS = [[{"role": "user", "content": f"Question {i}: how many legs has a {animal}?"},
          {"role": "assistant", "content": f"A {animal} has {legs} legs." + " Indeed." * i}]
         for i, (animal, legs) in enumerate([("cat", 4), ("bird", 2), ("spider", 8), ("fish", 0), ("ant", 6),
                                              ("dog", 4), ("snake", 0), ("crab", 10)] * 2)]


@pytest.fixture(scope="module")
def engine(trained_bt):
    from rmflow.serve.engine import RewardEngine

    return RewardEngine(str(trained_bt))


@pytest.fixture(scope="module")
def expected(engine) -> list[float]:
    """The in-process scores, one conversation at a time (what `rmflow evaluate` computes for each)."""
    return [engine.scorer.score_conversations([c], progress=False)[0] for c in CHATS]


@pytest.fixture(scope="module")
def server(engine):
    from rmflow.serve.app import Limits, create_app

    limits = Limits(max_inputs=20, max_input_tokens=200, max_body_bytes=20_000, max_wait_ms=30)
    with serving(create_app(engine, limits, token="s3cret")) as url:
        yield url


def post(url: str, path: str, body, token: str | None = "s3cret") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(url + path, json=body, headers=headers, timeout=60)


@pytest.mark.slow  # its model is trained (trained_bt)
def test_classify_takes_messages_strings_lists_and_token_ids(server, engine, expected):
    from rmflow.train.batching import render

    answer = post(server, "/classify", {"messages": CHATS[0], "use_activation": False}).json()
    assert answer["object"] == "list" and answer["model"] == engine.name and answer["usage"]["prompt_tokens"] > 0
    item = answer["data"][0]
    assert item["index"] == 0 and item["num_classes"] == 1 and item["label"] == "LABEL_0"
    assert abs(item["probs"][0] - expected[0]) < TOL
    texts = [render(engine.tokenizer, c) for c in CHATS[:3]]  # verl's input: the reward model's own rendering
    listed = post(server, "/v1/classify", {"input": texts, "activation": False}).json()["data"]
    assert [d["index"] for d in listed] == [0, 1, 2]
    assert all(abs(d["probs"][0] - e) < TOL for d, e in zip(listed, expected))
    ids = engine.tokenizer(texts[1], add_special_tokens=False)["input_ids"]
    by_ids = post(server, "/classify", {"input": ids, "use_activation": False}).json()["data"][0]["probs"][0]
    assert abs(by_ids - expected[1]) < TOL
    # vLLM's default applies the activation (the sigmoid, for one label)
    activated = post(server, "/classify", {"input": texts[0]}).json()["data"][0]["probs"][0]
    assert abs(activated - 1 / (1 + math.exp(-expected[0]))) < TOL


@pytest.mark.slow  # its model is trained (trained_bt)
def test_pooling_get_reward_and_group_rewards(server, expected):
    pooled = post(server, "/pooling", {"messages": CHATS[2]}).json()
    assert pooled["data"][0]["object"] == "pooling" and abs(pooled["data"][0]["data"][0] - expected[2]) < TOL
    group = post(server, "/v1/group_rewards", {"messages": CHATS[0][:1], "responses": [CHATS[0][1]["content"]]}).json()
    assert abs(group["rewards"][0] - expected[0]) < TOL and group["mode"] == "scalar" and group["best"] == 0


@pytest.mark.slow  # its model is trained (trained_bt)
def test_a_policy_templated_query_scores_as_the_same_conversation_sent_as_messages(server, expected):
    """OpenRLHF sends the policy's chat-templated text (another template, special tokens, left padding, EOS): the
    server re-renders it with the reward model's own template, once, with one BOS."""
    from rmflow.serve.chat_text import FAMILIES, jinja_render

    queries = []
    for family, eos in (("chatml", "<|im_end|>"), ("llama3", "<|eot_id|>"), ("gemma", "<eos>")):
        prompt = jinja_render(FAMILIES[family])(CHATS[3][:1], True)
        queries.append(prompt + CHATS[3][1]["content"] + eos)
    answer = post(server, "/get_reward", {"query": queries, "prompts": ["p"] * 3, "labels": [None] * 3}).json()
    assert set(answer) == {"rewards", "scores", "extra_logs"}
    assert all(abs(r - expected[3]) < TOL for r in answer["rewards"]), answer


@pytest.mark.slow  # its model is trained (trained_bt)
def test_rewards_do_not_depend_on_the_batch_16_concurrent_clients(server, engine, expected):
    before = dict(engine_stats(server))
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda c: post(server, "/classify", {"messages": c, "use_activation": False}),
                                CHATS))
    got = [a.json()["data"][0]["probs"][0] for a in answers]
    assert max(abs(g - e) for g, e in zip(got, expected)) < TOL
    after = engine_stats(server)
    # the clients shared forwards: fewer batches than requests
    assert after["requests"] - before["requests"] == 16 and after["batches"] - before["batches"] < 16, (before, after)


def engine_stats(url: str) -> dict:
    return httpx.get(url + "/v1/models", headers={"Authorization": "Bearer s3cret"}).json()["data"][0]["rmflow"][
        "batcher"]


@pytest.mark.slow  # its model is trained (trained_bt)
@pytest.mark.parametrize("path, body, token, status, words", [
    ("/classify", {}, "s3cret", 400, "exactly one of `input` and `messages`"),
    ("/classify", {"input": "x", "messages": CHATS[0]}, "s3cret", 400, "exactly one"),
    ("/classify", {"input": 5}, "s3cret", 400, "input"),
    ("/classify", {"messages": [{"role": "user", "content": 3}]}, "s3cret", 400, "content"),
    ("/classify", {"messages": CHATS[0][:1]}, "s3cret", 400, "ends with the assistant's answer"),
    ("/classify", {"input": "plain words, no template"}, "s3cret", 400, "send `messages` instead"),
    ("/classify", {"input": [10 ** 9]}, "s3cret", 400, "token ids must lie in"),
    ("/classify", {"messages": [CHATS[0][0], {"role": "assistant", "content": "word " * 400}]}, "s3cret", 400,
     "over this server's limit of 200"),
    ("/classify", {"messages": CHATS[0], "model": "other"}, "s3cret", 404, "does not exist"),
    ("/classify", {"input": ["<|user|>x"] * 21}, "s3cret", 413, "limit 20"),
    ("/classify", {"input": "x" * 30_000}, "s3cret", 413, "request body over 20000 bytes"),
    ("/classify", {"messages": CHATS[0]}, None, 401, "bearer token"),
    ("/classify", {"messages": CHATS[0]}, "wrong", 401, "bearer token"),
    ("/get_reward", {"query": "not a list"}, "s3cret", 400, "query"),
    ("/get_reward", {"query": ["a"], "prompts": ["a", "b"]}, "s3cret", 400, "prompts: 2 for 1 queries"),
    ("/v1/group_rewards", {"prompt": "p", "responses": []}, "s3cret", 400, "responses"),
])
def test_bad_requests_get_a_4xx_with_a_message(server, path, body, token, status, words):
    answer = post(server, path, body, token)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]["message"]
    assert words in message and "Traceback" not in answer.text


@pytest.mark.slow  # its model is trained (trained_bt)
def test_a_body_that_is_not_json_and_an_unknown_route(server):
    answer = httpx.post(server + "/classify", content=b"{not json", headers={"Authorization": "Bearer s3cret",
                                                                            "Content-Type": "application/json"})
    assert answer.status_code == 400 and "JSON" in answer.json()["error"]["message"]
    assert httpx.get(server + "/health").status_code == 200  # a load balancer's probe needs no token
    assert httpx.get(server + "/nothing", headers={"Authorization": "Bearer s3cret"}).status_code == 404


@pytest.mark.slow  # its model is trained (trained_bt)
def test_a_full_queue_answers_429(engine):
    from rmflow.serve.app import Limits, create_app

    with serving(create_app(engine, Limits(max_queued_items=2))) as url:
        answer = post(url, "/classify", {"messages": CHATS[0]}, None)
        assert answer.status_code == 200
        answer = httpx.post(url + "/v1/group_rewards", json={"prompt": "p", "responses": ["a", "b", "c"]})
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert "server busy" in json.loads(answer.text)["error"]["message"]


@pytest.mark.slow
def test_the_serve_command_prints_its_url_guards_with_a_token_and_stops_on_sigterm(trained_bt, tmp_path):
    """The real command in its own process, as an sbatch script starts it: port 0, the URL written to a file for
    the trainer's job, the token from the environment (never on the command line)."""
    import os
    import signal
    import sys

    from helpers import REPO

    url_file = tmp_path / "url"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "RMFLOW_SERVE_TOKEN": "t0ken"}
    proc, url = started([sys.executable, "-m", "rmflow.cli", "serve", "--model-dir", str(trained_bt), "--port", "0",
                         "--url-file", str(url_file)], env, url_file)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.post(url + "/classify", json={"messages": CHATS[0]}).status_code == 401
        answer = httpx.post(url + "/classify", json={"messages": CHATS[0]}, headers={"Authorization": "Bearer t0ken"})
        assert answer.status_code == 200 and answer.json()["model"] == "tiny/bt"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    # a graceful stop: uvicorn finishes, then re-raises the signal so the job's exit status says it was stopped
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in err, err[-2000:]
    assert f"rmflow serve: tiny/bt (scalar) at {url}" in out


def test_bad_serve_options_stop_with_one_line(tmp_path):
    from helpers import run_cli

    proc = run_cli("serve", "--model-dir", str(tmp_path), "--port", "70000")
    assert proc.returncode == 2 and "field 'port': must be 0-65535" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("serve", "--model-dir", str(tmp_path))
    assert proc.returncode == 2 and "is neither a model rmflow trained" in proc.stderr


@pytest.mark.slow
def test_the_sbatch_recipe_serves_on_the_nodes_name_and_refuses_without_a_token(trained_bt, tmp_path):
    """scripts/serve.sbatch run as SLURM runs it (bash; its #SBATCH lines are comments to bash)."""
    import os
    import signal
    import subprocess
    import sys

    from helpers import REPO

    script, url_file = REPO / "scripts/serve.sbatch", tmp_path / "url"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(REPO / "src")}
    env.pop("RMFLOW_SERVE_TOKEN", None)
    refused = subprocess.run(["bash", str(script), str(trained_bt), str(url_file), "0"], env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "set RMFLOW_SERVE_TOKEN" in refused.stderr
    proc, url = started(["bash", str(script), str(trained_bt), str(url_file), "0"],
                        {**env, "RMFLOW_SERVE_TOKEN": "tok"}, url_file)
    try:
        assert not url.startswith("http://127.") and not url.startswith("http://localhost")
        assert httpx.get(url + "/health", timeout=5).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def started(cmd: list[str], env: dict, url_file: Path):
    """A server command in its own process, once its URL file is written and /health answers: (process, URL)."""
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not url_file.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.2)
    url = url_file.read_text().strip()
    for _ in range(100):  # the file is written just before uvicorn takes the socket
        try:
            httpx.get(url + "/health", timeout=5)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, url
