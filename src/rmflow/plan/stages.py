"""The plan's part for methods of several stages (a method's STAGES), run by the generic rules stage_<name>."""

from __future__ import annotations

from rmflow import methods
from rmflow.plan import paths


class StagesMixin:
    def stages_of(self, method: str, base: str) -> tuple[str, ...]:
        module = self.module(method)
        hook = methods.hook(module, "stages")
        return tuple(hook(self.method_options(method, base)) if hook else methods.hook(module, "STAGES", ()))

    def staged(self, method: str) -> bool:
        return any(self.stages_of(method, b) for b in self.bases_of(method))

    def stage_names(self) -> list[str]:
        """Every stage name of the run, each one rule; a name is the last stage of every method that has it (its
        rule writes the model) or of none (its rule writes results/stages/...)."""
        names, last = {}, {}
        for m, b in self.pairs:
            stages = self.stages_of(m, b)
            for i, name in enumerate(stages):
                names.setdefault(name, None)
                final = i == len(stages) - 1
                if last.setdefault(name, final) != final:
                    self.fail(f"stage '{name}' is the last stage of one method and not of another: give them "
                              "different names (a stage's rule writes either the model or a stage folder)",
                              f"methods.{m}")
        self._stage_final = last
        return list(names)

    def stage_is_final(self, name: str) -> bool:
        if not hasattr(self, "_stage_final"):
            self.stage_names()
        return self._stage_final[name]

    def methods_with_stage(self, name: str) -> list[str]:
        return [m for m in self.methods if any(name in self.stages_of(m, b) for b in self.bases_of(m))]

    def stage_dir(self, method: str, base: str, stage: str) -> str:
        """Where a stage writes: the model directory for the last stage, else results/stages/<method>/<base>/<stage>.
        Also the rules' output pattern (method "{method}", base "{base}"), so the path is written once."""
        if self.stage_is_final(stage):
            return paths.path("model", method=method, base=base)  # a staged method has no final_model_dir of its own
        return paths.path("stage", method=method, base=base, stage=stage)

    def stage_inputs(self, method: str, base: str, stage: str) -> dict[str, str]:
        """What one stage reads ({name: path or hub id}), from the method's own hook."""
        hook = methods.hook(self.module(method), "stage_inputs")
        return hook(self, method, base, self.method_options(method, base), stage)
