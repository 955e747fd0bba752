"""The method registry is the whole protocol: every hook the code outside methods/ reads is listed there."""

from __future__ import annotations

import re

import pytest

from helpers import REPO
from rmflow import methods

HOOK_CALL = re.compile(r"methods\.(?:has_)?hook\([^,]+, \"(\w+)\"")


def test_every_hook_read_outside_the_registry_is_listed_in_it():
    read = {name for path in (REPO / "src/rmflow").rglob("*.py") for name in HOOK_CALL.findall(path.read_text())}
    assert read and read <= set(methods.OPTIONAL), sorted(read - set(methods.OPTIONAL))
    assert not set(methods.OPTIONAL) - read, "a listed hook nothing reads"


def test_an_unlisted_hook_is_a_bug_not_a_silent_default():
    with pytest.raises(KeyError, match="not a method hook"):
        methods.hook(methods.get("bt"), "stage_two_owner")


@pytest.mark.parametrize("name", methods.available())
def test_every_method_has_the_required_names(name):
    module = methods.get(name)
    assert all(hasattr(module, attr) for attr in methods.REQUIRED)
    # external's scorer decides per declared model (classifier: scalar, the others: pairwise)
    assert module.KIND in (("declared",) if methods.hook(module, "EXTERNAL", False) else ("scalar", "pairwise"))
