"""LLM-as-a-judge (local model and an OpenAI-compatible endpoint stub) and `rmflow rank`."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from helpers import pair, run_cli, spec_for, write_jsonl
from rmflow.errors import RmflowError
from rmflow.methods import judge, method_config


def test_template_missing_a_placeholder_is_named():
    with pytest.raises(RmflowError, match=r"methods.judge.options': the judge template lacks \{answer_b\}"):
        method_config("judge", {"template": "Q: {question} A: {answer_a}"})


def test_verdict_probability_both_tokens_and_fallbacks():
    assert judge.verdict_probability({" A": math.log(0.6), "B": math.log(0.2), "C": 0.0}) == pytest.approx(0.75)
    assert judge.verdict_probability({"A": -1.0}) == 1.0
    assert judge.verdict_probability({"yes": -0.1}) == 0.5


class StubJudge(BaseHTTPRequestHandler):
    """Answers /v1/completions with fixed logprobs: "A" is likelier whenever the prompt's A answer says 'good'."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/completions" and body["max_tokens"] == 1 and body["temperature"] == 0
        a_is_good = "[RESPONSE A] good" in body["prompt"]
        top = {"A": math.log(0.8), "B": math.log(0.2)} if a_is_good else {"A": math.log(0.3), " B": math.log(0.7)}
        payload = json.dumps({"choices": [{"text": "A", "logprobs": {"top_logprobs": [top]}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    server = HTTPServer(("127.0.0.1", 0), StubJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_endpoint_judge_reads_both_orders(tmp_path, stub_server):

    spec = spec_for("judge", base="b", options={"endpoint": stub_server}, test_defaults=False)
    judge.train(spec, str(tmp_path / "judge"))
    scorer = judge.load_scorer(str(tmp_path / "judge"))
    out = scorer.score_pairs([pair(good="good", bad="bad")])
    assert out["p_order1"][0] == pytest.approx(0.8)  # chosen shown as A: P(A) = 0.8
    assert out["p_order2"][0] == pytest.approx(0.7)  # chosen shown as B: P(B) = 0.7
    assert out["p_chosen"][0] == pytest.approx(0.75)
    assert scorer.summary(out)["position_bias"] == pytest.approx(0.1)


def test_local_judge_uses_the_template(tmp_path, tiny_base):

    template = "Question: {question}\nFirst: {answer_a}\nSecond: {answer_b}\nWhich is better, A or B?"
    spec = spec_for("judge", base="b", options={"model": str(tiny_base), "template": template}, test_defaults=False)
    judge.train(spec, str(tmp_path / "judge"))
    scorer = judge.load_scorer(str(tmp_path / "judge"))
    assert scorer.render([{"role": "user", "content": "Q?"}], "x", "y") == \
        "Question: Q?\nFirst: x\nSecond: y\nWhich is better, A or B?"
    out = scorer.score_pairs([pair(good="yes", bad="no")])
    assert out["p_chosen"][0] == pytest.approx((out["p_order1"][0] + out["p_order2"][0]) / 2)


@pytest.mark.slow
def test_rank_picks_known_best_and_worst_and_writes_dpo_pairs(tmp_path, trained_bt):
    from rmflow.methods import bt

    scorer = bt.load_scorer(str(trained_bt))
    responses = ["Hello there!", "No.", "The French word for 'cat' is 'chat'.", "Sure, here you go."]
    convs = [[{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": r}] for r in responses]
    truth = scorer.score_conversations(convs, progress=False)
    data = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Say hi.", "responses": responses},
                                                 {"prompt": "Say hi.", "responses": ["same", "same"]}])
    proc = run_cli("rank", "--method", "bt", "--model-dir", str(trained_bt), "--data", str(data), "--top-k", "2",
                   "--out-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    scored = [json.loads(line) for line in (tmp_path / "out/scored.jsonl").read_text().splitlines()]
    assert scored[0]["best"] == max(range(4), key=truth.__getitem__)
    assert scored[0]["worst"] == min(range(4), key=truth.__getitem__)
    pairs = [json.loads(line) for line in (tmp_path / "out/dpo_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 1 and pairs[0]["chosen"][-1]["content"] == responses[scored[0]["best"]]
    stats = json.loads((tmp_path / "out/stats.json").read_text())
    assert stats["no_pair"] == 1 and stats["forwards"] == 6  # identical responses give no pair, counted
    top = [json.loads(line) for line in (tmp_path / "out/top_k.jsonl").read_text().splitlines()]
    assert len(top[0]["responses"]) == 2 and top[0]["responses"][0] == responses[scored[0]["best"]]


def test_rank_pairwise_knockout_counts_comparisons(tmp_path, tiny_base, synthetic):
    from rmflow.methods import pair_pm
    from rmflow.methods.pairwise.model import PairwiseScorer
    from rmflow.models.load import load_model, load_tokenizer
    from rmflow.rank import load_rank_rows, rank_rows

    tok = load_tokenizer(str(tiny_base))
    scorer = PairwiseScorer(load_model(str(tiny_base), tok, auto_class="AutoModelForCausalLM"), tok, 256, "left")
    data = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Q", "answers": ["a", "b", "c", "d", "e"]}])
    scored, pairs, top, stats = rank_rows(pair_pm, scorer, load_rank_rows(str(data)), "knockout", 2)
    assert stats["comparisons"] == 2 * (5 - 1) and stats["forwards"] == 16 and len(top[0]["responses"]) == 1
    _, _, top_rr, stats_rr = rank_rows(pair_pm, scorer, load_rank_rows(str(data)), "round_robin", 2)
    assert stats_rr["comparisons"] == 10 and len(top_rr[0]["responses"]) == 2


def test_rank_row_without_responses_is_named(tmp_path):
    from rmflow.rank import load_rank_rows

    data = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Q", "responses": ["a"]}])
    with pytest.raises(RmflowError, match=r"rows.jsonl:1: field 'responses': needs a list of at least 2"):
        load_rank_rows(str(data))
