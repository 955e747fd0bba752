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


def _name_branches(text: str) -> list[str]:
    names = "|".join(re.escape(n) for n in methods.available())
    quoted = rf"[\"']({names})[\"']"
    branch = re.compile(rf"(?:==|!=|\bis\b|\bin\b)\s*\(?{quoted}|{quoted}\s*(?:==|!=)|"
                        rf"\.get\(\s*[\"']method[\"']\s*,\s*{quoted}|method_options\(\s*{quoted}")
    return [m.group(0) for m in branch.finditer(text)]


def test_no_code_outside_the_methods_and_the_ssrm_rule_files_branches_on_a_method_name():
    """The method contract: a new method is one module plus one config entry. The plan, the rules, the CLI and the
    leaderboard reach a method through its hooks (the released-model scorer through methods.RELEASED), never by
    comparing a name; SSRM's rule files (workflow/rules/ssrm*.smk) are the one documented exception."""
    sources = [p for p in (REPO / "src/rmflow").rglob("*.py") if "methods" not in p.relative_to(REPO / "src").parts]
    sources += [p for p in (REPO / "workflow").rglob("*.smk") if not p.name.startswith("ssrm")]
    sources += [REPO / "Snakefile"]
    found = {str(p.relative_to(REPO)): hits for p in sources if (hits := _name_branches(p.read_text()))}
    assert not found, found
    assert _name_branches('if method == "ssrm":') and _name_branches("PLAN.method_options('ssrm', base)")
    assert not _name_branches('names = ["tree", "stone"]')


def test_a_methods_own_command_is_added_by_its_module_not_written_into_the_cli():
    from rmflow import cli
    from rmflow.commands import COMMANDS

    assert COMMANDS and not {c.name for c in COMMANDS} & set(methods.available())
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if getattr(a, "choices", None) and "train" in a.choices).choices
    owners = {name for name in methods.available() if methods.has_hook(methods.get(name), "COMMAND")}
    assert owners == {"ssrm"} and owners <= set(commands)
    args = parser.parse_args(["ssrm", "select", "--spec", "s.json", "--threads", "2"])
    assert args.command is methods.get("ssrm").COMMAND and args.threads == 2 and args.batch_size == 16


def test_the_families_shared_code_lives_in_sub_packages_that_are_not_methods():
    import pkgutil

    families = {m.name for m in pkgutil.iter_modules(methods.__path__) if m.ispkg}
    assert families == {"pairwise", "steps", "scalar", "frozen"}
    assert not families & set(methods.available())


def _table(page: str, heading: str) -> dict[str, str]:
    """The first column (a `name`) and the second of the table under ``heading`` in docs/adding-a-method.md."""
    section = page.split(heading, 1)[1]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1]
        elif rows and not line.startswith("|"):
            break
    return rows


def test_the_adding_a_method_page_matches_the_protocol():
    """docs/adding-a-method.md is checked, not trusted: its tables are the registry's names, its signatures BT's,
    its SIZING keys and defaults the ones rmflow plan reads."""
    import inspect

    from rmflow.methods import bt
    from rmflow.sizing.jobs import DEFAULT_SIZING

    page = (REPO / "docs/adding-a-method.md").read_text()
    required = _table(page, "It must expose:")
    assert set(required) == set(methods.REQUIRED)
    assert set(_table(page, "## 3. Optional hooks")) == set(methods.OPTIONAL)
    def plain(function) -> str:  # the signature as the page writes it: names and defaults, no annotations
        return f"{function.__name__}(" + ", ".join(
            p.name if p.default is p.empty else f"{p.name}={p.default!r}"
            for p in inspect.signature(function).parameters.values()) + ")"

    assert f"`{plain(bt.train)}`" in required["train"]
    assert f"`{plain(bt.load_scorer)}`" in required["load_scorer"]
    sizing = _table(page, "`SIZING` keys (defaults")
    assert set(sizing) == set(DEFAULT_SIZING)
    assert all(str(DEFAULT_SIZING[k]) in v.strip("`") for k, v in sizing.items()), sizing
