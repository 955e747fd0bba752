"""tests/unit mirrors src/rmflow: each subfolder is named after a package of rmflow (or the repository's scripts/),
and no test file name appears twice (pytest imports test files by their base name from the root)."""

from __future__ import annotations

from collections import Counter

from helpers import REPO

UNIT = REPO / "tests/unit"


def test_every_subfolder_of_the_unit_tests_names_a_package_of_rmflow():
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    packages = {p.parent.name for p in (REPO / "src/rmflow").glob("*/__init__.py")}
    assert folders and folders <= packages | {"scripts"}, sorted(folders - packages)


def test_no_test_file_name_appears_twice():
    names = Counter(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert not [name for name, n in names.items() if n > 1]
