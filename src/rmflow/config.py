"""Load and validate a workflow config against its JSON schema, filling defaults, with errors that name the key.

Snakemake's own ``validate`` reports the schema path but not which config file a bad key came from; this one
names both, so "unknown key" and "wrong type" errors point at the line a user has to change.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from rmflow.errors import RmflowError


def _validator_with_defaults(schema: dict):
    from jsonschema import Draft7Validator, validators

    base = Draft7Validator.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from base(validator, properties, instance, schema)

    cls = validators.extend(Draft7Validator, {"properties": properties_with_defaults})
    return cls(schema)


def _files_holding(path: list, sources: list[str]) -> list[str]:
    """The config files (of several layered ones) that spell out ``path``: the ones a user must edit."""
    holding = []
    for source in sources:
        try:
            node = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            holding.append(source)
    return holding or sources


def _unknown_keys(error) -> list[str]:
    return sorted(set(error.instance) - set(error.schema.get("properties", {})))


def _describe(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = _unknown_keys(error)
        keys = ", ".join(f"'{path}.{k}'" if error.absolute_path else f"'{k}'" for k in unknown)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"unknown config key {keys}{hint}"
    if error.validator == "pattern" and error.schema.get("pattern") == NAME_PATTERN:
        return (f"config key '{path}': the name {error.instance!r} is not allowed: a name becomes a folder under "
                f"results/ and a word of shell commands, so it holds only letters, digits, '_', '.' and '-' and "
                "starts with a letter or digit")
    return f"config key '{path}': {error.message}"


NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # the schema's definitions.name (a test keeps them equal)


@functools.lru_cache(maxsize=4)
def _schema_validator(schema_path: str):
    # read and compiled once per process (the Snakefile validates twice; every SLURM job parses the Snakefile twice)
    return _validator_with_defaults(yaml.load(Path(schema_path).read_text(encoding="utf-8"), Loader=_LOADER))


def validate_config(config: dict, schema_path: str | Path, sources: list[str] | None = None) -> dict:
    """Validate ``config`` in place (defaults filled) and return it; raise RmflowError on the first problem."""
    validator = _schema_validator(str(schema_path))
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        error = errors[0]
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            path += _unknown_keys(error)[:1]
        where = ", ".join(_files_holding(path, [str(s) for s in sources])) if sources else "config"
        raise RmflowError(_describe(error), file=where)
    return config


# What a recipe is made of. A layer that says `layer: recipe` (config/paper.yaml) defines these sections itself:
# whatever earlier layers put there (the laptop default's tiny bases, its 8-epoch PRM, its 200-step SSRM rounds) is
# dropped, so a recipe never inherits the laptop's training choices by omission. Layers after it merge as usual
# (paper-smoke shrinks sizes over it); shared settings (threads, evaluate, leaderboard, rank) always merge.
RECIPE_SECTIONS = ("run", "datasets", "eval_sets", "base_models", "reward_models", "methods", "train",
                   "train_overrides", "bestofn")


def merge_layers(layers: list[dict]) -> dict:
    """Deep-merge config layers in order (dicts merge, other values replace, as Snakemake's --configfile does),
    a ``layer: recipe`` layer first clearing the recipe sections of the layers before it."""
    merged: dict = {}
    for data in layers:
        if (data or {}).get("layer") == "recipe":
            for section in RECIPE_SECTIONS:
                merged.pop(section, None)
        _deep_update(merged, data or {})
    return merged


def resolve_shipped_files(config: dict, root: str | Path, keys: tuple[str, ...] = ("deepspeed",)) -> dict:
    """Relative file settings (``train.deepspeed: config/deepspeed/zero3.json``) that do not exist from the working
    directory but do in the workflow's own tree become that file's absolute path, so a run in another
    ``--directory`` finds the configs the repository ships; a user's own file, found from the working directory,
    is left alone."""
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys and isinstance(value, str) and not Path(value).is_absolute() \
                        and not Path(value).exists() and (Path(root) / value).is_file():
                    node[key] = str((Path(root) / value).resolve())
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(config)
    return config


def has_recipe_layer(paths: list[str | Path]) -> bool:
    return any((_read(p) or {}).get("layer") == "recipe" for p in paths)


# libyaml's loader where PyYAML has it (same safe tags; ~5x faster: every snakemake start, one per SLURM job step,
# reads the config layers)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read(path: str | Path) -> dict:
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except yaml.YAMLError as exc:
        raise RmflowError(f"not valid YAML ({exc})", file=str(path)) from exc


def load_config(*paths: str | Path, schema_path: str | Path, overrides: dict | None = None) -> dict:
    """Merge YAML files as the workflow does (``merge_layers``), then ``overrides`` (Snakemake's --config)."""
    merged = merge_layers([_read(p) for p in paths] + [overrides or {}])
    return validate_config(merged, schema_path, [str(p) for p in paths])


def _deep_update(target: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
