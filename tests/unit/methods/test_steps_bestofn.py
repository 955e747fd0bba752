"""PRM/ORM: step chats, label-only loss, aggregations, one-pass step scores; best-of-N; bad inputs."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from helpers import DEFAULT, REPO, run_cli, spec_for, write_jsonl
from rmflow.errors import RmflowError
from rmflow.evaluate.bestofn import best_of_n, check_sets
from rmflow.methods.steps import chats as st


def test_step_chats_prm_and_orm():
    steps, labels = ["Step 1: 2 + 2 = 4.", "The answer is 4."], [True, False]
    assert st.step_messages("Add 2 and 2.", steps, labels, outcome=False) == [
        {"role": "user", "content": "Add 2 and 2. Step 1: 2 + 2 = 4."}, {"role": "assistant", "content": "+"},
        {"role": "user", "content": "The answer is 4."}, {"role": "assistant", "content": "-"}]
    assert st.step_messages("Add 2 and 2.", steps, labels, outcome=True) == [
        {"role": "user", "content": "Add 2 and 2. Step 1: 2 + 2 = 4.\nThe answer is 4."},
        {"role": "assistant", "content": "-"}]
    assert st.split_steps("a\n\n b \nc") == ["a", "b", "c"]


def test_aggregations_hand_computed():
    probs = [0.9, 0.5, 0.8]
    assert st.aggregate(probs, "mean") == pytest.approx(2.2 / 3)
    assert st.aggregate(probs, "min") == 0.5 and st.aggregate(probs, "last") == 0.8
    assert st.aggregate(probs, "prod") == pytest.approx(0.36)
    with pytest.raises(RmflowError, match="aggregation must be one of"):
        st.aggregate(probs, "median")


def test_label_count_must_match_step_count(tmp_path):

    src = write_jsonl(tmp_path / "steps.jsonl", [{"problem": "p", "steps": ["a"], "labels": [True]},
                                                 {"problem": "p", "steps": ["a", "b"], "labels": [True]}])
    proc = run_cli("prepare-data", "--source", str(src), "--format", "step_rows", "--out", str(tmp_path / "o.parquet"),
                   "--report", str(tmp_path / "r.json"))
    assert proc.returncode == 2 and "steps.jsonl:2: field 'labels': has 1 labels for 2 steps" in proc.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_label_positions_point_at_label_tokens(tiny_base):
    from rmflow.models.load import load_tokenizer

    tok = load_tokenizer(str(tiny_base))
    plus, minus = st.label_ids(tok)
    messages = st.step_messages("Add 2 and 2.", ["Step 1: 2 + 2 = 4.", "The answer is 4."], [True, False], False)
    ids, positions = st.encode_conversation(tok, messages, {"+": plus, "-": minus})
    assert [ids[p] for p in positions] == [plus, minus]
    # the turn-by-turn ids render back to the full template text
    assert tok.decode(ids) == tok.apply_chat_template(messages, tokenize=False).rstrip("\n").removesuffix("<|end|>")


def test_loss_is_on_label_tokens_only(tiny_base):
    from rmflow.models.load import load_model, load_tokenizer

    tok = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tok, auto_class="AutoModelForCausalLM").eval()
    plus, minus = st.label_ids(tok)
    batch = [st.encode_conversation(tok, st.step_messages("Add 2 and 2.", ["s1", "s2", "s3"], [True, True, False],
                                                           False), {"+": plus, "-": minus}),
             st.encode_conversation(tok, st.step_messages("Add 3 and 3.", ["only"], [False], False),
                                    {"+": plus, "-": minus})]
    with torch.no_grad():
        loss, stats = st.label_loss(model, batch, tok.pad_token_id)
        # the same loss from full logits with every non-label target masked out
        from rmflow.train.batching import pad

        ids, mask = pad([s for s, _ in batch], tok.pad_token_id)
        logits = model(input_ids=ids, attention_mask=mask).logits
        targets = torch.full(ids.shape, -100)
        for row, (seq, positions) in enumerate(batch):
            for p in positions:
                targets[row, p] = seq[p]
        manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                   targets[:, 1:].reshape(-1), ignore_index=-100)
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5) and stats["pairs"] == 4


@pytest.mark.slow
def test_one_pass_step_scores_equal_per_step_passes(tmp_path, synthetic, tiny_base):

    from helpers import prepared
    from rmflow.methods import prm

    data = prepared(tmp_path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"})
    spec = spec_for("prm", tiny_base, data, max_steps=3, per_device_batch=4, max_length=256)
    prm.train(spec, str(tmp_path / "model"))
    scorer = prm.load_scorer(str(tmp_path / "model"))
    problem, steps = "Ann has 3 marbles.", ["Step 1: 3 + 4 = 7.", "Step 2: 7 - 1 = 6.", "The answer is 6."]
    together = scorer.step_probabilities([problem], ["\n".join(steps)], progress=False)[0]
    alone = [scorer.step_probabilities([problem], ["\n".join(steps[:k + 1])], progress=False)[0][-1]
             for k in range(len(steps))]
    assert together == pytest.approx(alone, abs=1e-5)
    assert scorer.score_conversations([[{"role": "user", "content": problem},
                                        {"role": "assistant", "content": "\n".join(steps)}]], progress=False)[0] \
        == pytest.approx(sum(together) / 3)


def test_best_of_n_on_a_constructed_case():
    # problem 1: only candidate 2 is right and scores highest; problem 2: nothing is right
    scores = [[0.1, 0.2, 0.9, 0.3], [0.5, 0.4, 0.3, 0.2]]
    labels = [[0, 0, 1, 0], [0, 0, 0, 0]]
    accuracy = best_of_n(scores, labels, [1, 4], subsets=400, seed=0)
    assert accuracy[4] == 0.5  # all four drawn: problem 1 always right, problem 2 never
    assert accuracy[1] == pytest.approx(0.125, abs=0.03)  # a single random candidate: 1/4 on problem 1
    wrong_scorer = best_of_n([[0.9, 0.2, 0.1, 0.3], scores[1]], labels, [4], subsets=10, seed=0)
    assert wrong_scorer[4] == 0.0


def test_best_of_n_needs_enough_candidates():
    sets = [{"prompt": "p", "answers": ["a", "b"], "labels": [1, 0], "__row__": 3}]
    with pytest.raises(RmflowError, match=r"sets.jsonl:3: field 'answers': N_max 4 is larger than this set's 2"):
        check_sets(sets, 4, "sets.jsonl")


def test_packing_gives_the_same_loss_as_unpacked(tiny_base):
    from rmflow.models.load import load_model, load_tokenizer

    tok = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tok, auto_class="AutoModelForCausalLM").eval()
    plus, minus = st.label_ids(tok)
    examples = [st.encode_conversation(tok, st.step_messages(f"Problem {i}.", [f"s{j}" for j in range(1 + i % 3)],
                                                               [j % 2 == 0 for j in range(1 + i % 3)], False),
                                       {"+": plus, "-": minus}) for i in range(5)]
    groups = st.pack([len(ids) for ids, _ in examples], capacity=120)
    assert sorted(i for g in groups for i in g) == list(range(5)) and len(groups) < 5
    with torch.no_grad():
        unpacked, stats = st.label_loss(model, examples, tok.pad_token_id)
        packed, packed_stats = st.packed_label_loss(model, [[examples[i] for i in g] for g in groups],
                                                    tok.pad_token_id)
    assert packed.item() == pytest.approx(unpacked.item(), rel=1e-5)
    assert packed_stats["pairs"] == stats["pairs"] and packed_stats["correct"] == stats["correct"]


@pytest.mark.slow
def test_packed_prm_and_scalar_orm_train(tmp_path, synthetic, tiny_base):

    from helpers import prepared
    from rmflow.methods import orm_scalar, prm

    data = str(prepared(tmp_path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"}))
    train = {"lr": 3e-3, "max_steps": 2, "per_device_batch": 2, "grad_accum": 1, "max_length": 256, "log_every": 1}
    spec = spec_for("prm", tiny_base, data, train=train, options={"packing": True, "packed_length": 512},
                    test_defaults=False)
    prm.train(spec, str(tmp_path / "prm"))
    metrics = json.loads((tmp_path / "prm/metrics.json").read_text())
    assert metrics["packing"] is True and metrics["training_rows"] < metrics["train_conversations"]
    spec = spec_for("orm_scalar", tiny_base, data, train=train, test_defaults=False)
    orm_scalar.train(spec, str(tmp_path / "orm"))
    rows = [r for r in synthetic["steps"] if r["split"] == "train"]
    assert json.loads((tmp_path / "orm/metrics.json").read_text())["positive_share"] == pytest.approx(
        sum(r["labels"][-1] for r in rows) / len(rows))
    scored = orm_scalar.load_scorer(str(tmp_path / "orm")).score_pairs([
        {"chosen": [{"role": "user", "content": "P"}, {"role": "assistant", "content": "a"}],
         "rejected": [{"role": "user", "content": "P"}, {"role": "assistant", "content": "b"}]}])
    assert len(scored["score_chosen"]) == 1


@pytest.mark.slow
def test_training_data_filtered_to_nothing_stops_instead_of_spinning(tmp_path, synthetic, tiny_base):
    """Every step conversation is longer than max_length, so every one is skipped: an epoch with no batches used
    to loop forever."""
    from helpers import prepared
    from rmflow.errors import RmflowError
    from rmflow.methods import prm

    data = str(prepared(tmp_path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"}))
    spec = spec_for("prm", tiny_base, data, max_steps=2, per_device_batch=2, grad_accum=1, max_length=16,
                    test_defaults=False)
    with pytest.raises(RmflowError, match="nothing to train on: the training data gave no batches"):
        prm.train(spec, str(tmp_path / "prm"))
    assert not (tmp_path / "prm").exists()


def test_declared_step_text_builds_the_chats_the_seeds_scorers_build():
    """math-rm/prm_evaluate.py splits Mistral answers on "ки\\n" (Deepseek: "\\n\\n") and strips each piece (the
    last one keeps its tag); orm_evaluate.py removes " ки" and scores prompt + " " + answer as one user turn."""
    from rmflow.methods.steps.chats import StepText

    prompt = "Tom has 2 boxes of 6 eggs. How many eggs?"
    mistral = "Step 1: 2 * 6 = 12 ки\nStep 2: He has 12 eggs. ки\nStep 3: The answer is: 12 ки"
    deepseek = "First, 2 * 6 = 12.\n\nSo the answer is 12."

    def seed_prm(answer, separator):  # prm_evaluate.py, the conversation of the last step
        conversation = []
        for k, text in enumerate(j.strip() for j in answer.split(separator)):
            conversation += [{"content": prompt + " " + text if k == 0 else text, "role": "user"},
                             {"content": "+", "role": "assistant"}]
        return conversation

    mistral_text = StepText.of({"separator": "ки\n", "outcome_remove": [" ки"]})
    assert mistral_text.chat(prompt, mistral, outcome=False) == [
        {"role": m["role"], "content": m["content"]} for m in seed_prm(mistral, "ки\n")]
    assert mistral_text.chat(prompt, mistral, outcome=False)[4]["content"] == "Step 3: The answer is: 12 ки"
    assert mistral_text.chat(prompt, mistral, outcome=True) == [
        {"role": "user", "content": prompt + " " + mistral.replace(" ки", "")}, {"role": "assistant", "content": "+"}]
    deepseek_text = StepText.of({"separator": "\n\n"})
    assert deepseek_text.chat(prompt, deepseek, outcome=False) == seed_prm(deepseek, "\n\n")
    assert deepseek_text.chat(prompt, deepseek, outcome=True)[0]["content"] == prompt + " " + deepseek
    # undeclared: steps are lines, and the ORM reads them rejoined (the default run's rule)
    assert StepText().chat(prompt, "a\n\n  b", outcome=True)[0]["content"] == prompt + " a\nb"
    with pytest.raises(RmflowError, match="field 'steps'"):
        StepText.of({"separator": ""})


def test_paper_best_of_n_sets_declare_the_seeds_step_layout():


    datasets = yaml.safe_load((REPO / "config/paper.yaml").read_text())["datasets"]
    sets = {name: entry for name, entry in datasets.items() if entry["format"] == "bestofn"}
    assert len(sets) == 4
    for name, entry in sets.items():
        expected = ({"separator": "ки\n", "outcome_remove": [" ки"]} if entry["path"].startswith("RLHFlow/Mistral")
                    else {"separator": "\n\n"})
        assert entry.get("steps") == expected, name


def test_the_bestofn_rule_passes_each_sets_step_layout_through_the_shell(tmp_path):
    import shlex

    from helpers import snakemake

    proc = snakemake(tmp_path, "all", "-n", "-p", "--profile", str(REPO / "profiles/slurm"),
                     configs=(DEFAULT, REPO / "config/paper.yaml"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # -p prints each command on one line: the JSON with its newline escape survives shell quoting intact
    layouts = {}
    for line in proc.stdout.splitlines():
        if " bestofn run " in line:
            words = shlex.split(line.split("Shell command: ", 1)[-1].split(" > ")[0])
            text = next(w.split("=", 1)[1] for w in words if w.startswith("--step-text="))
            layouts[words[words.index("--set") + 1]] = json.loads(text)
    assert layouts["mistral_gsm8k_test"] == {"separator": "ки\n", "outcome_remove": [" ки"]}
    assert layouts["deepseek_math500_test"] == {"separator": "\n\n"}


class _LengthScorer:
    """Scores a candidate by its answer's length; stops (as a preempted job would) after ``fail_after`` calls."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def score_conversations(self, conversations):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("preempted")
        self.calls += 1
        return [float(len(c[-1]["content"])) for c in conversations]


def test_a_large_set_is_scored_chunk_by_chunk_and_a_rerun_resumes(tmp_path, monkeypatch):
    from rmflow.evaluate import bestofn

    monkeypatch.setattr(bestofn, "CHUNK_CANDIDATES", 8)
    rows = [{"context": [{"role": "user", "content": f"q{i}"}], "answers": ["x" * (i + j) for j in range(4)],
             "labels": [0, 0, 0, 1]} for i in range(10)]  # 40 candidates: chunks of 2 problems
    whole = _LengthScorer().score_conversations([r["context"] + [{"role": "assistant", "content": a}]
                                                 for r in rows for a in r["answers"]])
    resume = tmp_path / "scratch/part.jsonl"
    with pytest.raises(KeyboardInterrupt):
        bestofn.score_candidates(_LengthScorer(fail_after=3), rows, str(resume), "model-a")
    assert len(resume.read_text().splitlines()) == 1 + 3  # header + the three chunks scored before the kill
    again = _LengthScorer()
    assert bestofn.score_candidates(again, rows, str(resume), "model-a") == whole
    assert again.calls == 2  # only the two chunks the first run had not finished
    other = _LengthScorer()
    assert bestofn.score_candidates(other, rows, str(resume), "model-b") == whole and other.calls == 5
    small = _LengthScorer()  # one chunk: one call, no file
    assert bestofn.score_candidates(small, rows[:2], str(tmp_path / "none.jsonl"), "m") == whole[:8]
    assert small.calls == 1 and not (tmp_path / "none.jsonl").exists()


# ---- saved step models scored by plain transformers --------------------------------------------------------------
def _steps_data(tmp_path, synthetic):
    from helpers import prepared

    return str(prepared(tmp_path / "steps.parquet", synthetic["steps"], "step_rows", where={"split": "train"}))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["prm", "orm"])
def test_saved_step_models_reload_in_plain_transformers_with_the_same_scores(tmp_path, synthetic, tiny_base, method):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmflow import methods

    module = methods.get(method)
    spec = spec_for(method, tiny_base, _steps_data(tmp_path, synthetic), max_steps=2, per_device_batch=4,
                    max_length=256, options={"aggregation": "min" if method == "prm" else "last"})
    module.train(spec, str(tmp_path / "model"))
    problem, steps = "Ann has 3 marbles.", ["Step 1: 3 + 4 = 7.", "The answer is 7."]
    ours = module.load_scorer(str(tmp_path / "model")).score_conversations(
        [[{"role": "user", "content": problem}, {"role": "assistant", "content": "\n".join(steps)}]], progress=False)
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    plus, minus = tok("+", add_special_tokens=False)["input_ids"][0], tok("-", add_special_tokens=False)["input_ids"][0]
    users = [f"{problem} {steps[0]}", steps[1]] if method == "prm" else [f"{problem} " + "\n".join(steps)]
    chat, probs = [], []
    for user in users:
        chat.append({"role": "user", "content": user})
        text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            logits = lm(**tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        probs.append(torch.softmax(logits[[plus, minus]], -1)[0].item())
        chat.append({"role": "assistant", "content": "+"})
    assert ours[0] == pytest.approx(min(probs) if method == "prm" else probs[-1], abs=1e-5)


@pytest.mark.slow
def test_saved_scalar_orm_reloads_in_plain_transformers_with_the_same_scores(tmp_path, synthetic, tiny_base):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmflow.methods import orm_scalar

    spec = spec_for("orm_scalar", tiny_base, _steps_data(tmp_path, synthetic), max_steps=2, per_device_batch=4,
                    max_length=256)
    orm_scalar.train(spec, str(tmp_path / "model"))
    conv = [{"role": "user", "content": "Ann has 3 marbles."}, {"role": "assistant", "content": "3 + 4 = 7."}]
    ours = orm_scalar.load_scorer(str(tmp_path / "model")).score_conversations([conv], progress=False)[0]
    tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    with torch.no_grad():
        plain = model(**tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False,
                            return_tensors="pt")).logits[0, 0].item()
    assert ours == pytest.approx(plain, abs=1e-5)


# ---- 3. one-pass step scores against plain transformers, one prefix at a time ----------------------------------
def test_step_probabilities_equal_plain_transformers_per_step(tmp_path, tiny_base):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rmflow.methods.steps.model import StepScorer
    from rmflow.models.load import load_model, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer(str(tiny_base))
    model = load_model(str(tiny_base), tok, auto_class="AutoModelForCausalLM")
    with torch.no_grad():  # a random but fixed head so P(+) varies from step to step
        model.get_output_embeddings().weight.normal_(0, 1)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    problem, steps = "Ann has 3 marbles.", ["Step 1: 3 + 4 = 7.", "Step 2: 7 - 1 = 6.", "The answer is 6."]
    ours = StepScorer(load_model(str(tmp_path / "m"), tok, auto_class="AutoModelForCausalLM"), tok, False, "mean",
                      512).step_probabilities([problem], ["\n".join(steps)], progress=False)[0]
    plain_tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    plus, minus = (plain_tok("+", add_special_tokens=False)["input_ids"][0],
                   plain_tok("-", add_special_tokens=False)["input_ids"][0])
    expected, chat = [], []
    for k, step in enumerate(steps):
        chat.append({"role": "user", "content": f"{problem} {step}" if k == 0 else step})
        text = plain_tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        with torch.no_grad():
            logits = plain(**plain_tok(text, add_special_tokens=False, return_tensors="pt")).logits[0, -1]
        expected.append(torch.softmax(logits[[plus, minus]], -1)[0].item())  # the next token after the header
        chat.append({"role": "assistant", "content": "+"})
    assert ours == pytest.approx(expected, abs=1e-5)
    assert max(expected) - min(expected) > 1e-3, "the check needs steps whose P(+) differ"
