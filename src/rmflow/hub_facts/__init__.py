"""Facts about the hub repositories the paper recipe names: one YAML file per id (``owner--name.yaml`` beside this
module), every fact a ``{value, source}`` pair naming the file or card it was read from.

Models: ``architecture``, ``model_type``, ``behaviour`` (the config.json keys that change what the model computes:
rope, soft-capping, sliding window, a reward head's own keys), ``shape`` (the keys that decide parameters, memory
and FLOPs), ``tokenizer``, and where known ``custom_code`` (auto_map, the modelling file's classes and imports) and
``weights`` (the weight files and their format). Data sets: ``layout``, ``splits``, ``files``, ``columns`` and
``rows`` (a count, or only the card's ``size_bucket``), with ``data_dirs`` for a repository's sub-folders.

Three readers: the rehearsal hub (rmflow.rehearsal), whose stand-ins are generated from these facts and checked
against them by a test; ``rmflow plan`` (rmflow.sizing), which sizes a job from a model's shape and a data set's
rows; and people, who can see where every number comes from. Facts come from the artifact or its card, never from
rmflow's own stand-ins. Imports no torch.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

HERE = Path(__file__).parent


def file_of(repo_id: str) -> Path:
    return HERE / f"{repo_id.replace('/', '--')}.yaml"


@functools.lru_cache(maxsize=None)
def all_facts() -> dict[str, dict]:
    """Every recorded repository, by id."""
    out = {}
    for path in sorted(HERE.glob("*.yaml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[content["id"]] = content
    return out


def facts(repo_id: str) -> dict | None:
    return all_facts().get(repo_id)


def value(repo_id: str, key: str, default=None):
    """One fact's value (``default`` where the repository or the fact is not recorded)."""
    entry = (facts(repo_id) or {}).get(key)
    return entry["value"] if isinstance(entry, dict) and "value" in entry else default


def config_json(repo_id: str) -> dict | None:
    """The recorded config.json keys of a model (architecture, model_type, shape, behaviour) as one dict."""
    content = facts(repo_id)
    if not content or content["type"] != "model":
        return None
    return {"architectures": [value(repo_id, "architecture")], "model_type": value(repo_id, "model_type"),
            **value(repo_id, "shape", {}), **value(repo_id, "behaviour", {})}


def rows(repo_id: str, data_dir: str | None = None) -> tuple[int, bool, str] | None:
    """(rows to plan with, whether that is an estimate, why) for a data set, or None where it is not recorded.
    A card that gives only a size bucket is planned at the bucket's upper end, and says so."""
    content = facts(repo_id)
    if not content:
        return None
    entry = (content.get("data_dirs") or {}).get(data_dir, {}).get("rows") if data_dir else content.get("rows")
    if not entry:
        return None
    if entry.get("value") is not None:
        return int(entry["value"]), bool(entry.get("estimate")), entry["source"]
    low, high = entry["size_bucket"]
    return int(high), True, (f"the card gives only the size bucket {low:,}-{high:,}: planned at its upper end "
                             f"({high:,}); {entry['source']}")
