"""From a validated config to the workflow's runs, paths and specs. Imports no torch: the DAG stays cheap.

Everything the Snakefile needs to know about names lives here, so rules stay a table of contents; the checks that
every name is defined and planned (unknown method, undefined base model, a method on a base the run does not have,
a data set of the wrong kind) are in ``plan.checks`` and run as the plan is built, before any job is submitted.

A run trains every (method, base) pair it plans: ``run.methods × run.base_models`` by default, or for a method with
``bases:`` only those (a list of names, or a mapping from name to per-pair ``train``/``options``/``dataset``
overrides, for recipes that did not train every method on every base with the same settings).
"""

from __future__ import annotations

import dataclasses
import re

from rmflow import methods
from rmflow.errors import RmflowError
from rmflow.hub import looks_local
from rmflow.plan import checks, paths
from rmflow.plan.bases import BasesMixin
from rmflow.plan.paths import RESULTS
from rmflow.plan.released import RELEASED, ReleasedMixin
from rmflow.plan.stages import StagesMixin
from rmflow.spec import RunSpec
from rmflow.train.config import TrainConfig

GPU_PRESETS = ("cpu", "a100_80g", "a40_48g")


def use_workflow_source(src) -> None:
    """Put the workflow's own ``src/`` first on PYTHONPATH, which every job inherits (on a cluster too: the job
    re-reads the Snakefile), so rules run this very rmflow with the interpreter of their environment."""
    import os

    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(src)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(src), *rest])


class Plan(BasesMixin, StagesMixin, ReleasedMixin):
    def __init__(self, config: dict, sources: list[str] | None = None):
        self.config = config
        self.where = ", ".join(str(s) for s in sources) if sources else "config"
        run = config["run"]
        self.methods: list[str] = run["methods"]
        self.bases: list[str] = run["base_models"]
        self.eval_sets: list[str] = run["eval_sets"]
        self.externals: list[str] = run.get("reward_models", [])
        for name, entry in (config.get("methods") or {}).items():
            if entry.get("module"):  # a method outside rmflow (methods.<name>.module)
                try:
                    methods.register(name, entry["module"])
                except RmflowError as exc:
                    self.fail(str(exc).removeprefix(f"field '{exc.field}': "), exc.field)
        self.only: set[tuple[str, str]] | None = None
        self.pairs: list[tuple[str, str]] = [(m, b) for m in self.methods for b in self.bases_of(m)]
        if config.get("only"):
            self._narrow(config["only"])
        checks.check(self)

    def _narrow(self, only: str) -> None:
        """``only``: run just the listed (method, base) pairs and reward models of what the config plans; every
        other planned run is left out (a dependency such as ArmoRM's BT must be listed too: the checks say so)."""
        entries = [e.strip() for e in only.split(",") if e.strip()]
        pairs, externals = [], []
        for entry in entries:
            method, _, base = entry.partition(":")
            if base and (method, base) in self.pairs:
                pairs.append((method, base))
            elif not base and entry in self.externals:
                externals.append(entry)
            else:
                planned = ", ".join([f"{m}:{b}" for m, b in self.pairs] + self.externals)
                self.fail(f"'{entry}' is not a run this config plans (method:base or a reward model; planned: "
                          f"{planned})", "only")
        self.only = set(pairs)
        self.pairs = [p for p in self.pairs if p in self.only]
        self.methods = [m for m in self.methods if any(m == pm for pm, _ in self.pairs)]
        self.bases = [b for b in self.bases if any(b == pb for _, pb in self.pairs)]
        self.externals = externals
        if not self.pairs and not self.externals:
            self.fail("lists nothing to run", "only")

    def fail(self, message: str, key: str) -> None:
        """Raise a config error that names the config files and the key (every check of the plan ends here)."""
        raise RmflowError(message, file=self.where, field=key)

    # ---- per (method, base) resolution --------------------------------------------------------------------
    def method_entry(self, method: str) -> dict:
        return self.config.get("methods", {}).get(method, {})

    def bases_of(self, method: str) -> list[str]:
        """The bases a method trains on: its own ``bases:`` list, else every base of the run (in run order)."""
        listed = self.method_entry(method).get("bases")
        return [b for b in self.bases if (listed is None or b in listed)
                and (self.only is None or (method, b) in self.only)]

    def pair_entry(self, method: str, base: str) -> dict:
        listed = self.method_entry(method).get("bases")
        return (listed.get(base) or {}) if isinstance(listed, dict) else {}

    def method_options(self, method: str, base: str | None = None):
        if self.is_released(method):  # a released model's options are its declaration
            return self.released_config(base)
        options = {**self.method_entry(method).get("options", {}),
                   **(self.pair_entry(method, base).get("options", {}) if base else {})}
        where = f"methods.{method}" + (f".bases.{base}" if base and self.pair_entry(method, base) else "")
        try:
            return methods.method_config(method, options, where="methods")
        except RmflowError as exc:
            raise RmflowError(f"{exc} ({where})", file=self.where) from exc

    def train_config(self, method: str, base: str) -> TrainConfig:
        values = {**self.config.get("train", {}), **self.config["base_models"][base].get("train", {}),
                  **self.method_entry(method).get("train", {}), **self.pair_entry(method, base).get("train", {}),
                  **self.config.get("train_overrides", {})}
        try:
            return TrainConfig.from_dict(values)
        except (RmflowError, TypeError) as exc:
            self.fail(str(exc), f"train ({method}/{base})")

    def dataset_of(self, method: str, base: str) -> str:
        return (self.pair_entry(method, base).get("dataset") or self.method_entry(method).get("dataset")
                or self.config["run"]["train_dataset"])

    def datasets_of(self, method: str, base: str) -> dict[str, str]:
        """Every data set a (method, base) pair reads, with the kind it needs: its training set and the extra ones
        its options name (SSRM's pool, ArmoRM's attribute rows)."""
        module, options = self.module(method), self.method_options(method, base)
        reads = methods.hook(module, "READS", "pairs")
        out = {self.dataset_of(method, base): reads} if reads else {}
        hook = methods.hook(module, "dataset_options", None)
        for option, kind in (hook(options) if hook else {}).items():
            name = getattr(options, option)
            if name:
                out[name] = kind
        return out

    def datasets(self) -> list[str]:
        """Every data set the run prepares."""
        names = {name for m, b in self.pairs for name in self.datasets_of(m, b)}
        cfg = self.config.get("bestofn", {})
        names |= set(cfg.get("sets") or []) | ({cfg["steps"]} if cfg.get("steps") else set())
        return sorted(names)

    # ---- names and paths ----------------------------------------------------------------------------------
    def module(self, method: str):
        return methods.get(method)

    def has_own_workflow(self, method: str) -> bool:
        """Methods with their own rules (SSRM's rounds) are not trained by the generic train rule."""
        return methods.has_hook(self.module(method), "final_model_dir")

    def generic_methods(self) -> list[str]:
        """Methods the generic train_<preset> rule trains: one step, no rules of their own."""
        return [m for m in self.methods if not self.has_own_workflow(m) and not self.staged(m)
                and m not in self.setup_methods()]

    def setup_methods(self) -> list[str]:
        """Methods that train nothing (the judge, external models): a local job writes their directory."""
        return [m for m in self.methods if methods.hook(self.module(m), "SETUP_ONLY", False)] + \
            ([RELEASED] if self.externals else [])

    def model_dir(self, method: str, base: str) -> str:
        if self.has_own_workflow(method):
            return self.module(method).final_model_dir(base, self.method_options(method, base), RESULTS)
        return paths.path("model", method=method, base=base)

    def model_dir_args(self) -> list[str]:
        """``method/base=directory`` for every planned model, wherever its method keeps it (rmflow plots --models):
        the figures and run_metrics.csv find SSRM's last round with its rounds, every other model under models/."""
        return [f"{m}/{b}={self.model_dir(m, b)}" for m, b in self.pairs]

    def reads_data(self, method: str) -> bool:
        return methods.hook(self.module(method), "READS", "pairs") is not None

    def prepared(self, dataset: str) -> str:
        return paths.path("prepared", dataset=dataset)

    def train_data(self, method: str, base: str) -> str:
        """The file the train step reads: a method's own transform of the prepared set, else the prepared set."""
        if methods.has_hook(self.module(method), "transform"):
            return paths.path("transformed", method=method, base=base)
        return self.prepared(self.dataset_of(method, base))

    def extra_train_inputs(self, method: str, base: str) -> list[str]:
        """Files a method's train step reads besides its spec and data (the judge's model; an external model that
        this run itself produces)."""
        if self.is_released(method):
            return self.released_inputs(base)
        hook = methods.hook(self.module(method), "extra_inputs", None)
        return hook(self.method_options(method, base), base, RESULTS) if hook else []

    # ---- frozen-backbone methods (ArmoRM, the decision tree) --------------------------------------------------
    def backbone_of(self, method: str, base: str) -> str:
        """The frozen backbone RM: the option ``backbone`` (a directory or hub id), else the run's model of
        ``backbone_method`` on the same base."""
        options = self.method_options(method, base)
        return options.backbone or self.model_dir(options.backbone_method, base)

    def scalar_methods(self) -> list[str]:
        return [m for m in self.methods if self.module(m).KIND == "scalar"]

    def local_inputs(self, section: str, name: str) -> list[str]:
        """The entry's paths that are files of this machine: an input Snakemake must have (or make) first. A path
        under results/ is one even before it exists (a folder another rule writes, e.g. the samples' RewardBench)."""
        path = self.config[section][name]["path"]
        return [p for p in (path if isinstance(path, list) else [path])
                if looks_local(p) or p.startswith(f"{RESULTS}/")]

    @staticmethod
    def regex(names: list[str]) -> str:
        # a regex that matches nothing keeps a preset's train rule from claiming any base
        return "|".join(re.escape(n) for n in names) if names else "(?!x)x"

    def targets(self) -> list[str]:
        extra = [target for m, b in self.pairs if methods.has_hook(self.module(m), "extra_targets")
                 for target in self.module(m).extra_targets(b, RESULTS)]
        if self.bestofn_files():
            extra += [f"{RESULTS}/bestofn.csv", f"{RESULTS}/bestofn.png"]
        if self.ranks():
            extra.append(self.rank_stats())
        gathered = ["leaderboard.csv", "leaderboard.md", "leaderboard.tex", "leaderboard_subsets.csv",
                    "pairwise_significance.csv", "plots/sections_ci.png", "plots/length_bias.png",
                    "plots/train_loss.png", "plots/run_metrics.csv", "config_used.yaml"]
        # every planned score and best-of-N file is a target of its own, not only an input of the tables: after a
        # failed run the tables gathered from what exists (rmflow.plan.failures) stand in place, and the next run
        # must still see the missing files as wanted, make them, and then rebuild the tables from them
        return [f"{RESULTS}/{name}" for name in gathered] + self.score_files() + self.bestofn_files() + extra

    def ranks(self) -> bool:
        """Whether ``rmflow rank`` runs: rank.data is set, and under ``only`` its pair is one of those listed."""
        if not self.config.get("rank", {}).get("data"):
            return False
        if self.only is None:
            return True
        if not self.methods:  # only reward models listed
            return False
        method = self.rank_method()
        return method in self.methods and (method, self.rank_base()) in self.pairs

    def rank_method(self) -> str:
        """``rank.method``, else bt where this run trains it, else the run's first method: a run of one method
        (``make run ONLY=...``) ranks with that one instead of failing for want of bt."""
        chosen = self.config["rank"].get("method")
        return chosen or ("bt" if "bt" in self.methods else self.methods[0])

    def rank_base(self) -> str:
        cfg = self.config["rank"]
        return cfg.get("base") or self.bases_of(self.rank_method())[0]

    def rank_stats(self) -> str:
        return paths.path("rank_stats", method=self.rank_method(), base=self.rank_base())

    def bestofn_pairs(self) -> list[tuple[str, str]]:
        cfg = self.config.get("bestofn", {})
        wanted = cfg.get("methods") or self.scalar_methods()
        return [(m, b) for m, b in self.pairs if m in wanted]

    def bestofn_files(self) -> list[str]:
        sets = self.config.get("bestofn", {}).get("sets") or []
        return [paths.path("bestofn", set=s, method=m, base=b) for s in sets for m, b in self.bestofn_pairs()]

    def kind_of(self, method: str, base: str) -> str:
        """scalar or pairwise; a released model's declared scorer decides its kind."""
        if self.is_released(method):
            return self.module(method).kind_of(self.released_config(base))
        return self.module(method).KIND

    def _all_evaluations(self) -> list[tuple[str, str, str]]:
        return [(e, m, b) for e in self.eval_sets
                for m, b in self.scored_models()]

    def evaluations(self) -> list[tuple[str, str, str]]:
        """(eval set, method, base) to score: those a model of its kind can be scored on (RewardBench 2 scores each
        completion alone: scalar models; ProcessBench reads every step: step-level models)."""
        from rmflow import methods
        from rmflow.evaluate.benchmarks import scorable_by

        return [(e, m, b) for e, m, b in self._all_evaluations()
                if scorable_by(self.benchmark_of(e), self.kind_of(m, b),
                               bool(methods.hook(self.module(m), "STEP_LEVEL", False)))]

    def benchmark_of(self, eval_set: str) -> str:
        return self.config["eval_sets"][eval_set].get("benchmark", "rewardbench_v1")

    def prepared_eval(self, eval_set: str) -> str:
        """The eval set's rows, validated once by the CPU rule prepare_eval before anything is trained."""
        return paths.path("eval_rows", eval_set=eval_set)

    def skipped_evaluations(self) -> list[tuple[str, str]]:
        wanted = set(self.evaluations())
        skipped = [(e, f"{b} (external)" if self.is_released(m) else m) for e, m, b in self._all_evaluations()
                   if (e, m, b) not in wanted]
        return list(dict.fromkeys(skipped))

    def score_files(self) -> list[str]:
        return [paths.path("scores", eval_set=e, method=m, base=b) for e, m, b in self.evaluations()]

    # ---- specs written to disk ----------------------------------------------------------------------------
    def run_spec(self, method: str, base: str) -> dict:
        if self.is_released(method):
            return self.released_spec(base)
        entry = self.base_entry(base)
        spec = RunSpec(
            method=method,
            base=base,
            base_model=self.base_model_ref(base),
            train_data=self.train_data(method, base),
            train=self.train_config(method, base),
            options=self.method_options(method, base),
            method_version=methods.get(method).VERSION,
            revision=entry.get("revision"),
            trust_remote_code=entry.get("trust_remote_code", False),
            system_turn=entry.get("system_turn", "template"),
            attn_implementation=entry.get("attn_implementation"),
        )
        return dataclasses.asdict(spec)
