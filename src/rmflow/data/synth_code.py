"""Tiny Python functions for the synthetic Reasoning section: a correct one and a buggy one, both executed
against tests at generation time so the label is verified, not assumed."""

from __future__ import annotations

import random

# name, (train phrasing, test phrasing), correct body, buggy bodies, test inputs (Python literals as strings);
# {k} is the item's constant.
FAMILIES = [
    ("add_k", ("Write a Python function add_k(x) that returns x plus {k}.",
               "Implement add_k(x): it should give back the sum of x and {k}."),
     "return x + {k}", ["return x + {k} + 1", "return x - {k}"], [0, 1, 5, -3, 40]),
    ("times_k", ("Write a Python function times_k(x) that returns x multiplied by {k}.",
                 "Implement times_k(x), which returns {k} times x."),
     "return x * {k}", ["return x + {k}", "return x * ({k} - 1)"], [0, 1, 3, -2, 7]),
    ("count_above", ("Write a Python function count_above(xs) that counts the items of xs greater than {k}.",
                     "Implement count_above(xs): how many numbers in xs are strictly above {k}?"),
     "return sum(1 for v in xs if v > {k})", ["return sum(1 for v in xs if v >= {k})",
                                              "return sum(1 for v in xs if v < {k})"],
     ["[1, 2, 3]", "[{k}, {k}, 30]", "[]", "[50, -1, {k}]"]),
    ("sum_to", ("Write a Python function sum_to(n) that returns 1 + 2 + ... + n plus {k}.",
                "Implement sum_to(n): the sum of the integers from 1 to n, then add {k}."),
     "return sum(range(1, n + 1)) + {k}", ["return sum(range(1, n)) + {k}", "return sum(range(n)) + {k} + 1"],
     [1, 2, 5, 10]),
    ("is_multiple", ("Write a Python function is_multiple(x) that tells whether x is a multiple of {k}.",
                     "Implement is_multiple(x): True exactly when {k} divides x."),
     "return x % {k} == 0", ["return x % {k} == 1", "return x // {k} == 0"], ["0", "{k}", "2 * {k}", "{k} + 1", "1"]),
    ("clamp", ("Write a Python function clamp(x) that limits x to the range 0..{k}.",
               "Implement clamp(x) so the result never goes below 0 or above {k}."),
     "return min(max(x, 0), {k})", ["return min(x, {k})", "return max(x, 0)"], ["-5", "0", "3", "{k}", "100"]),
]


def _compile(name: str, arg: str, body: str):
    namespace: dict = {}
    exec(f"def {name}({arg}):\n    {body}\n", namespace)  # noqa: S102 - our own generated code
    return namespace[name]


def _arg(name: str) -> str:
    return {"count_above": "xs", "sum_to": "n"}.get(name, "x")


def code_item(rng: random.Random, train: bool, k: int) -> tuple[str, str, str]:
    """Return (prompt, correct answer, buggy answer); raises if the bug is not caught by the tests."""
    name, phrasings, good_body, bad_bodies, inputs = rng.choice(FAMILIES)
    good_body, arg = good_body.format(k=k), _arg(name)
    cases = [eval(str(v).format(k=k)) for v in inputs]  # noqa: S307 - literal test inputs
    good_fn = _compile(name, arg, good_body)
    expected = [good_fn(c) for c in cases]
    for bad_body in rng.sample(bad_bodies, k=len(bad_bodies)):
        bad_body = bad_body.format(k=k)
        bad_fn = _compile(name, arg, bad_body)
        if any(bad_fn(c) != e for c, e in zip(cases, expected)):
            break
    else:
        raise AssertionError(f"no buggy variant of {name} fails its tests for k={k}")
    prompt = phrasings[0 if train else 1].format(k=k)
    answer = "```python\ndef {n}({a}):\n    {b}\n```"
    return prompt, answer.format(n=name, a=arg, b=good_body), answer.format(n=name, a=arg, b=bad_body)
