"""RunSpec: everything one training run needs, resolved from config at plan time and kept beside the model."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmflow.errors import RmflowError
from rmflow.train.config import TrainConfig


@dataclass(frozen=True)
class RunSpec:
    """One run's inputs. ``train`` and ``options`` are typed once, here: given as dicts (a spec file, the plan, a
    test) they are parsed into ``TrainConfig`` and the method's own ``Config``, unknown keys refused by name, so no
    trainer re-parses them. ``to_json`` writes them back as plain objects (the file format is unchanged)."""

    method: str  # registry name (= config key = path segment)
    base: str  # base model name from config
    base_model: str  # hub id or local directory of the base model
    train_data: str  # prepared standard-row parquet
    train: TrainConfig = field(default_factory=TrainConfig)
    options: Any = None  # the method's Config (None or a dict: parsed by the registry's method_config)
    method_version: int = 1
    revision: str | None = None
    trust_remote_code: bool = False
    system_turn: str = "template"  # how a leading system turn is rendered: template | merge | error (the base's rule)
    attn_implementation: str | None = None  # eager | sdpa | flash_attention_2; None: transformers' default (the base's)
    hub: dict = field(default_factory=dict)  # written at save time: {role: {id, revision, commit}} of hub inputs

    def __post_init__(self) -> None:
        from rmflow import methods

        if not isinstance(self.train, TrainConfig):
            object.__setattr__(self, "train", TrainConfig.from_dict(self.train or {}))
        if self.options is None or isinstance(self.options, dict):
            object.__setattr__(self, "options", methods.method_config(self.method, self.options))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: str | Path) -> "RunSpec":
        try:
            values = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RmflowError(f"unreadable run spec ({exc})", file=str(path)) from exc
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RmflowError(f"unknown run spec keys {unknown}", file=str(path))
        try:
            return cls(**values)
        except RmflowError as exc:
            if exc.file is not None:
                raise
            raise RmflowError(str(exc), file=str(path)) from exc
