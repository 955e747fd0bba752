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


def _layers() -> dict[str, int]:
    """docs/layout.md's layer table: {entry: layer}."""
    text = (REPO / "docs/layout.md").read_text()
    table = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0].strip().splitlines()[2:]
    layers = {}
    for line in table:
        number, modules = (c.strip() for c in line.strip("|").split("|")[:2])
        for entry in modules.split(","):
            layers[entry.strip(" `")] = int(number)
    return layers


def _layer_of(module: str, layers: dict[str, int]) -> tuple[int, str] | None:
    """The layer of ``rmflow.<module>``: its longest matching entry (``x.__init__`` matches the package alone)."""
    rel = module.removeprefix("rmflow").lstrip(".") or "__init__"
    matches = [(len(entry), entry) for entry in layers
               if rel == entry or rel.startswith(entry + ".") or f"{rel}.__init__" == entry]
    if not matches:
        return None
    entry = max(matches)[1]
    return layers[entry], entry


def _imports(path, module: str) -> list[tuple[int, str]]:
    """(line, imported rmflow module) of every import in a file, inside functions too; ``from pkg import sub`` names
    the submodule where ``sub`` is one."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = REPO / "src" / f"{node.module}.{alias.name}".replace(".", "/")
                named = sub.with_suffix(".py").exists() or sub.is_dir()
                found.append((node.lineno, f"{node.module}.{alias.name}" if named else node.module))
    return [(line, name) for line, name in found if name == "rmflow" or name.startswith("rmflow.")]


def test_no_module_imports_from_a_later_layer():
    layers = _layers()
    source = REPO / "src/rmflow"
    unplaced, upward = [], []
    for path in sorted(source.rglob("*.py")):
        parts = path.relative_to(source.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        own = _layer_of(module, layers)
        if own is None:
            unplaced.append(module)
            continue
        for line, name in _imports(path, module):
            theirs = _layer_of(name, layers)
            if theirs and theirs[0] > own[0]:
                upward.append(f"{path.relative_to(REPO)}:{line} (layer {own[0]}, {own[1]}) imports {name} "
                              f"(layer {theirs[0]}, {theirs[1]})")
    assert not unplaced, f"modules in no layer of docs/layout.md: {unplaced}"
    assert not upward, "\n".join(upward)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The check is not vacuous: an import of the CLI from a foundation module is flagged."""
    layers = _layers()
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from rmflow.cli import main\n    from rmflow import methods\n")
    found = _imports(planted, "rmflow.io")
    assert found == [(2, "rmflow.cli"), (3, "rmflow.methods")]
    assert _layer_of("rmflow.io", layers)[0] < _layer_of("rmflow.cli", layers)[0]
    assert _layer_of("rmflow.methods", layers) == (3, "methods.__init__")
    assert _layer_of("rmflow.methods.bt", layers) == (4, "methods")
