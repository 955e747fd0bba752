"""The front page and the documentation site: what issue 26 promised of them, checked on every CI run."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import pytest

from helpers import REPO

# where a user's clone must not point at ../shared (tests and their data helper may: they skip without it)
USER_FACING = ["README.md", "Snakefile", "Makefile", "pyproject.toml", "mkdocs.yml", "src", "workflow", "config",
               "profiles", "docs", "scripts", "benchmarks", "envs"]


def _docs_command() -> list[str]:
    """The Makefile's `docs` recipe, so the test checks the command CI runs, not a copy of it."""
    lines = (REPO / "Makefile").read_text().splitlines()
    start = lines.index(next(line for line in lines if line.startswith("docs:")))
    recipe = [line.strip() for line in lines[start + 1:] if line.startswith("\t")][:1]
    assert recipe and recipe[0].startswith("mkdocs "), recipe
    return [sys.executable, "-m", *shlex.split(recipe[0])]


def _build(folder, site) -> subprocess.CompletedProcess:
    return subprocess.run([*_docs_command(), "--site-dir", str(site)], cwd=folder, capture_output=True, text=True,
                          timeout=120)


def test_the_readme_is_a_front_page_of_at_most_300_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def test_nothing_a_user_s_clone_holds_points_at_the_shared_folder():
    hits = []
    for name in USER_FACING:
        root = REPO / name
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []
        for path in files:
            if "__pycache__" in path.parts or path.suffix in {".png", ".pyc", ".safetensors"}:
                continue
            text = path.read_text(errors="replace")
            hits += [f"{path.relative_to(REPO)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                     if "../shared" in line]
    assert not hits


def test_the_docs_build_with_no_warning(tmp_path):
    pytest.importorskip("mkdocs")
    built = _build(REPO, tmp_path / "site")
    assert built.returncode == 0, built.stderr[-2000:]
    assert "WARNING" not in built.stderr + built.stdout


def test_the_docs_build_fails_on_a_broken_link_or_a_page_missing_from_the_site(tmp_path):
    """mkdocs 1.6 with --quiet stops counting warnings, so --strict let broken links through (it hid a generated
    page the repository did not hold); the recipe must fail where a page is missing."""
    pytest.importorskip("mkdocs")
    shutil.copy(REPO / "mkdocs.yml", tmp_path)
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    (tmp_path / "docs/runs/default-run.md").unlink()
    built = _build(tmp_path, tmp_path / "site")
    assert built.returncode != 0 and "runs/default-run.md" in built.stderr
