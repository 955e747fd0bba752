"""The plan's released reward models (``run.reward_models``): things to score, not to train.

Each one is declared under ``reward_models.<name>`` (a hub id or directory and how its authors score it) and is
scored like a trained model: its directory is results/models/<RELEASED>/<name>, which a local job writes (the
declaration; nothing is trained), so every rule and path pattern serves both. Which registry module scores them is
the registry's (``methods.RELEASED``, a module whose ``EXTERNAL`` flag is set), never a name written here.
"""

from __future__ import annotations

import dataclasses

from rmflow import methods
from rmflow.errors import RmflowError
from rmflow.spec import RunSpec

RELEASED = methods.RELEASED


class ReleasedMixin:
    def is_released(self, method: str) -> bool:
        """Whether ``method`` is the module that scores released models (its EXTERNAL flag)."""
        return bool(methods.hook(self.module(method), "EXTERNAL", False))

    def released_config(self, name: str):
        """The declaration of a released reward model (``reward_models.<name>``), checked like method options."""
        try:
            return methods.method_config(RELEASED, self.config["reward_models"][name], where="reward_models")
        except RmflowError as exc:
            raise RmflowError(str(exc).replace("reward_models.external.options", f"reward_models.{name}"),
                              file=self.where) from exc

    def released_models(self) -> list[tuple[str, str]]:
        """(RELEASED, name) of each released model: the same (method, base) shape a trained model has."""
        return [(RELEASED, name) for name in self.externals]

    def scored_models(self) -> list[tuple[str, str]]:
        """Everything the run scores: its trained (method, base) pairs, then the released models."""
        return self.pairs + self.released_models()

    def released_inputs(self, name: str) -> list[str]:
        """A released model that this run itself produces (a directory under results/) is a job's input."""
        from rmflow.plan import RESULTS  # rmflow.plan (the package) imports this module

        model = self.released_config(name).model
        return [model] if model and model.startswith(f"{RESULTS}/") else []

    def released_spec(self, name: str) -> dict:
        options = self.released_config(name)
        return dataclasses.asdict(RunSpec(method=RELEASED, base=name, base_model=options.model or "",
                                          train_data="", options=options,
                                          method_version=methods.get(RELEASED).VERSION,
                                          revision=options.revision, trust_remote_code=options.trust_remote_code,
                                          system_turn=options.system_turn))
