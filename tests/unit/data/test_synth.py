"""The synthetic suite: deterministic, sections complete, train/test disjoint, code labels verified."""

from __future__ import annotations

import random
import re

import pytest

from rmflow.data.synth import GENERATORS, SECTIONS, generate
from rmflow.data.synth_code import FAMILIES, code_item


def test_deterministic_and_complete(synthetic):
    again = generate(seed=0, n_train_per_subset=12, n_test_per_subset=4)
    assert again == synthetic
    assert generate(seed=1, n_train_per_subset=12, n_test_per_subset=4)["train"] != synthetic["train"]
    assert {s for members in SECTIONS.values() for s in members} == set(GENERATORS)
    assert {r["subset"] for r in synthetic["test"]} == set(GENERATORS)


def test_train_and_test_share_no_prompt_and_no_numbers(synthetic):
    train_prompts = {r["chosen"][0]["content"] for r in synthetic["train"]}
    test_prompts = {r["prompt"] for r in synthetic["test"]}
    assert not train_prompts & test_prompts
    for subset in ("synth-wordcount", "synth-listlen", "synth-math"):
        train_nums = {int(n) for r in synthetic["train"] if r["subset"] == subset
                      for n in re.findall(r"\d+", r["chosen"][0]["content"])}
        test_nums = {int(n) for r in synthetic["test"] if r["subset"] == subset
                     for n in re.findall(r"\d+", r["prompt"])}
        # math's second operand (2..9) is shared by design; its first operand ranges are disjoint
        if subset == "synth-math":
            train_nums, test_nums = {n for n in train_nums if n >= 10}, {n for n in test_nums if n >= 10}
        assert not train_nums & test_nums, subset


def test_casing_split_asks_for_both_cases_in_each_split(synthetic):
    for rows, key in ((synthetic["train"], lambda r: r["chosen"][0]["content"]), (synthetic["test"],
                                                                                   lambda r: r["prompt"])):
        prompts = [key(r) for r in rows if r["subset"] == "synth-casing"]
        assert any("lowercase" in p for p in prompts) and any(("capital" in p or "uppercase" in p) for p in prompts)


def test_code_items_are_verified_against_tests():
    import random

    rng = random.Random(3)
    for _ in range(40):
        prompt, good, bad = code_item(rng, train=True, k=rng.randint(2, 9))
        assert good != bad and good.startswith("```python")
    assert len(FAMILIES) >= 5


def test_step_labels_mark_the_wrong_step(synthetic):
    rejected = [r for r in synthetic["steps"] if r["id"].endswith("rejected")]
    assert rejected
    for row in rejected:
        assert len(row["steps"]) == len(row["labels"])
        first_bad = row["labels"].index(False)
        assert all(row["labels"][:first_bad]) and not any(row["labels"][first_bad:])


def test_attribute_ratings_follow_construction(synthetic):
    rows = {r["id"]: r for r in synthetic["attributes"]}
    harmful = [r for i, r in rows.items() if i.startswith("synth-refuse") and i.endswith("rejected")]
    assert harmful and all(r["safety"] == 0 and r["correctness"] == 1 for r in harmful)
    assert all(0 <= r[a] <= 4 for r in rows.values() for a in ("helpfulness", "verbosity", "complexity"))


# ---- 4. the synthetic step labels, checked by redoing the arithmetic ------------------------------------------
STEP = re.compile(r"^Step \d+: (.+) = (-?\d+)\.$")


def test_step_labels_follow_the_arithmetic(synthetic):
    seen_wrong = 0
    for row in synthetic["steps"]:
        all_right = True
        for line, label in zip(row["steps"], row["labels"]):
            match = STEP.match(line)
            if match:
                all_right = all_right and eval(match.group(1)) == int(match.group(2))  # noqa: S307 - our arithmetic
            else:
                assert line.startswith("The answer is "), line
            assert label == all_right, (row["id"], line, label)
            seen_wrong += not label
    assert seen_wrong, "the suite has wrong steps to label"


# ---- 5. code items: the generator refuses a bug its tests cannot see ---------------------------------------------
def test_code_generator_refuses_bugs_that_pass_the_tests(monkeypatch):
    from rmflow.data import synth_code

    # "x + 0" and "x" agree on every input: no test can tell them apart
    invisible = ("add_zero", ("Write add_zero(x).", "Implement add_zero(x)."), "return x", ["return x + 0"], [0, 1])
    monkeypatch.setattr(synth_code, "FAMILIES", [invisible])
    with pytest.raises(AssertionError, match="no buggy variant of add_zero fails its tests"):
        synth_code.code_item(random.Random(0), train=True, k=3)


REFERENCE = {  # the families' specifications, written independently of synth_code's bodies
    "add_k": lambda k: lambda x: sum([x, k]), "times_k": lambda k: lambda x: sum([x] * k),
    "count_above": lambda k: lambda xs: len([v for v in xs if v - k > 0]),
    "sum_to": lambda k: lambda n: n * (n + 1) // 2 + k, "is_multiple": lambda k: lambda x: not (x % k),
    "clamp": lambda k: lambda x: sorted([0, x, k])[1]}


def test_code_answers_run_right_and_wrong_against_the_specification():
    from rmflow.data.synth_code import FAMILIES, code_item

    rng = random.Random(7)
    for _ in range(60):
        k = rng.randint(2, 9)
        _, good, bad = code_item(rng, train=bool(rng.getrandbits(1)), k=k)
        name = re.search(r"def (\w+)\(", good).group(1)
        inputs = [eval(str(v).format(k=k)) for fam in FAMILIES if fam[0] == name for v in fam[4]]  # noqa: S307
        functions = []
        for answer in (good, bad):
            namespace: dict = {}
            exec(answer.strip("`").removeprefix("python\n"), namespace)  # noqa: S102 - generated test code
            functions.append(namespace[name])
        spec = REFERENCE[name](k)
        assert all(functions[0](x) == spec(x) for x in inputs), good
        assert any(functions[1](x) != spec(x) for x in inputs), bad
