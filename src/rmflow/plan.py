"""From a validated config to the workflow's runs, paths and specs. Imports no torch: the DAG stays cheap.

Everything the Snakefile needs to know about names lives here, so rules stay a table of contents and errors about
names (unknown method, undefined base model, missing local path) surface before any job is submitted.
"""

from __future__ import annotations

import dataclasses
import re

from rmflow import methods
from rmflow.data.loaders import looks_local
from rmflow.errors import RmflowError
from rmflow.models.load import check_model_ref
from rmflow.spec import RunSpec
from rmflow.train.config import TrainConfig

GPU_PRESETS = ("cpu", "a100_80g", "a40_48g")
RESULTS = "results"


class Plan:
    def __init__(self, config: dict, sources: list[str] | None = None):
        self.config = config
        self.where = ", ".join(str(s) for s in sources) if sources else "config"
        run = config["run"]
        self.methods: list[str] = run["methods"]
        self.bases: list[str] = run["base_models"]
        self.eval_sets: list[str] = run["eval_sets"]
        for i, name in enumerate(self.methods):
            self._method_config(name, f"run.methods[{i}]")
        for name in self.bases:
            self._check_base(name)
        for name in self.eval_sets:
            self._defined("eval_sets", name)
        for name in self.datasets():
            self._defined("datasets", name)
        rank = config.get("rank", {})
        if rank.get("data") and rank.get("method", "bt") not in self.methods:
            self._fail(f"ranks with method '{rank['method']}', which is not in run.methods", "rank.method")
        if rank.get("data") and rank.get("base") and rank["base"] not in self.bases:
            self._fail(f"ranks with base '{rank['base']}', which is not in run.base_models", "rank.base")
        for method in self.methods:  # e.g. ArmoRM reads the BT model of the same base
            needs = getattr(self.module(method), "requires", lambda config: [])(self._method_config(method, "methods"))
            for other in needs:
                if other not in self.methods:
                    self._fail(f"method '{method}' reads the outputs of '{other}', which is not in run.methods",
                               "run.methods")
        for name in self.bases:
            for method in self.methods:
                self._train_config(method, name)

    # ---- checks -------------------------------------------------------------------------------------------
    def _fail(self, message: str, key: str) -> None:
        raise RmflowError(message, file=self.where, field=key)

    def _defined(self, section: str, name: str) -> dict:
        entries = self.config.get(section, {})
        if name not in entries:
            self._fail(f"'{name}' is not defined (defined: {', '.join(sorted(entries)) or 'none'})",
                       f"{section}.{name}")
        return entries[name]

    def _method_config(self, name: str, key: str):
        if name not in methods.available():
            self._fail(f"unknown method '{name}' (available: {', '.join(methods.available())})", key)
        options = self.config.get("methods", {}).get(name, {}).get("options", {})
        try:
            return methods.method_config(name, options, where="methods")
        except RmflowError as exc:
            raise RmflowError(str(exc), file=self.where) from exc

    def _check_base(self, name: str) -> None:
        entry = self._defined("base_models", name)
        if ("model" in entry) == ("tiny" in entry):
            self._fail("needs exactly one of 'model' (hub id or local directory) or 'tiny'", f"base_models.{name}")
        if "model" in entry:
            try:
                check_model_ref(entry["model"])
            except RmflowError as exc:
                self._fail(str(exc).split(": ", 1)[-1], f"base_models.{name}.model")

    def _train_config(self, method: str, base: str) -> TrainConfig:
        values = {**self.config.get("train", {}), **self.config["base_models"][base].get("train", {}),
                  **self.config.get("methods", {}).get(method, {}).get("train", {})}
        try:
            return TrainConfig.from_dict(values)
        except (RmflowError, TypeError) as exc:
            self._fail(str(exc), f"train ({method}/{base})")

    # ---- names and paths ----------------------------------------------------------------------------------
    def dataset_of(self, method: str) -> str:
        return self.config.get("methods", {}).get(method, {}).get("dataset", self.config["run"]["train_dataset"])

    def datasets(self) -> list[str]:
        """Every dataset a run reads: each method's training set and any extra it names (SSRM's pool)."""
        names = {self.dataset_of(m) for m in self.methods}
        for method in self.methods:
            extra = getattr(self._method_config(method, "methods"), "unlabeled_dataset", None)
            if extra:
                names.add(extra)
        return sorted(names)

    def module(self, method: str):
        return methods.get(method)

    def has_own_workflow(self, method: str) -> bool:
        """Methods with their own rules (SSRM's rounds) are not trained by the generic train rule."""
        return hasattr(self.module(method), "final_model_dir")

    def generic_methods(self) -> list[str]:
        return [m for m in self.methods if not self.has_own_workflow(m)]

    def model_dir(self, method: str, base: str) -> str:
        if self.has_own_workflow(method):
            return self.module(method).final_model_dir(base, self._method_config(method, "methods"), RESULTS)
        return f"{RESULTS}/models/{method}/{base}"

    def train_data(self, method: str, base: str) -> str:
        """The file the train step reads: a method's own transform of the prepared set, else the prepared set."""
        if hasattr(self.module(method), "transform"):
            return f"{RESULTS}/data/transformed/{method}/{base}.parquet"
        return f"{RESULTS}/data/prepared/{self.dataset_of(method)}.parquet"

    def extra_train_inputs(self, method: str, base: str) -> list[str]:
        """Files a method's train step reads besides its spec and data (the PRM's step-labelled solutions)."""
        hook = getattr(self.module(method), "extra_inputs", None)
        return hook(self._method_config(method, "methods"), base, RESULTS) if hook else []

    def scalar_methods(self) -> list[str]:
        return [m for m in self.methods if self.module(m).KIND == "scalar"]

    def method_options(self, method: str):
        return self._method_config(method, "methods")

    def base_entry(self, base: str) -> dict:
        return self.config["base_models"][base]

    def is_tiny(self, base: str) -> bool:
        return "tiny" in self.base_entry(base)

    def base_model_ref(self, base: str) -> str:
        return f"{RESULTS}/bases/{base}" if self.is_tiny(base) else self.base_entry(base)["model"]

    def bases_with_preset(self, preset: str) -> list[str]:
        return [b for b in self.bases if self.base_entry(b).get("gpu_preset", "cpu") == preset]

    def local_inputs(self, section: str, name: str) -> list[str]:
        path = self.config[section][name]["path"]
        return [path] if looks_local(path) else []

    @staticmethod
    def regex(names: list[str]) -> str:
        # a regex that matches nothing keeps a preset's train rule from claiming any base
        return "|".join(re.escape(n) for n in names) if names else "(?!x)x"

    def targets(self) -> list[str]:
        extra = [target for m in self.methods if hasattr(self.module(m), "extra_targets")
                 for b in self.bases for target in self.module(m).extra_targets(b, RESULTS)]
        if self.bestofn_files():
            extra += [f"{RESULTS}/bestofn.csv", f"{RESULTS}/bestofn.png"]
        if self.config.get("rank", {}).get("data"):
            extra.append(f"{self.rank_dir()}/stats.json")
        gathered = ["leaderboard.csv", "leaderboard.md", "leaderboard.tex", "leaderboard_subsets.csv",
                    "pairwise_significance.csv", "plots/sections_ci.png", "plots/length_bias.png",
                    "plots/train_loss.png", "plots/run_metrics.csv", "config_used.yaml"]
        return [f"{RESULTS}/{name}" for name in gathered] + extra

    def rank_dir(self) -> str:
        cfg = self.config["rank"]
        return f"{RESULTS}/rank/{cfg['method']}/{cfg.get('base') or self.bases[0]}"

    def bestofn_files(self) -> list[str]:
        if not self.config.get("bestofn", {}).get("data"):
            return []
        return [f"{RESULTS}/bestofn/{m}/{b}.json" for m in self.scalar_methods() for b in self.bases]

    def evaluations(self) -> list[tuple[str, str]]:
        """(eval set, method) pairs to score: RewardBench 2 scores each completion alone, so only scalar methods."""
        return [(e, m) for e in self.eval_sets for m in self.methods
                if self.config["eval_sets"][e]["sections"] != "rewardbench_v2" or self.module(m).KIND == "scalar"]

    def skipped_evaluations(self) -> list[tuple[str, str]]:
        wanted = set(self.evaluations())
        return [(e, m) for e in self.eval_sets for m in self.methods if (e, m) not in wanted]

    def score_files(self) -> list[str]:
        return [f"{RESULTS}/eval/{e}/{m}/{b}/scores.json" for e, m in self.evaluations() for b in self.bases]

    # ---- specs written to disk ----------------------------------------------------------------------------
    def run_spec(self, method: str, base: str) -> dict:
        entry = self.base_entry(base)
        spec = RunSpec(
            method=method,
            base=base,
            base_model=self.base_model_ref(base),
            train_data=self.train_data(method, base),
            train=dataclasses.asdict(self._train_config(method, base)),
            options=dataclasses.asdict(self._method_config(method, "methods")),
            method_version=methods.get(method).VERSION,
            revision=entry.get("revision"),
            trust_remote_code=entry.get("trust_remote_code", False),
        )
        return dataclasses.asdict(spec)

    def tiny_spec(self, base: str) -> dict:
        return dict(self.base_entry(base)["tiny"])
