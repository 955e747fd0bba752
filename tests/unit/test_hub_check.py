"""The hub pre-flight online: the hub client is replaced at its edge (its HTTP session and the HfApi calls that
would reach huggingface.co) and nowhere else; the offline path runs on the rehearsal hub (test_rehearsal.py)."""

from __future__ import annotations

import httpx2
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from rmflow import hub_check


def _error(cls, url):
    return cls(f"{cls.__name__} for {url}", response=httpx2.Response(403, request=httpx2.Request("GET", url)))


class Hub:
    """What the hub answers: which repos are gated or absent, which revisions exist, which files a data set has."""

    gated = {"meta-llama/Meta-Llama-3-8B-Instruct"}
    absent = {"acme/no-such-model"}
    revisions = {"main", None, "v1"}
    files = {"RLHFlow/Mistral-GSM8K-Test": ["README.md", "data/train-00000-of-00001.parquet"],
             "nvidia/HelpSteer2": ["README.md", "train.jsonl.gz", "validation.jsonl.gz",
                                   "preference/preference.jsonl.gz"]}

    def auth_check(self, api, repo_id, repo_type=None, **_):
        if repo_id in self.gated:
            raise _error(GatedRepoError, f"https://huggingface.co/api/models/{repo_id}/auth-check")
        if repo_id in self.absent:
            raise _error(RepositoryNotFoundError, f"https://huggingface.co/api/models/{repo_id}")

    def repo_info(self, api, repo_id, repo_type=None, revision=None, **_):
        if revision not in self.revisions:
            raise _error(RevisionNotFoundError, f"https://huggingface.co/api/models/{repo_id}/revision/{revision}")

    def list_repo_files(self, api, repo_id, repo_type=None, revision=None, **_):
        return self.files[repo_id]


@pytest.fixture()
def online_hub(monkeypatch, tmp_path):
    hub = Hub()
    for name in ("auth_check", "repo_info", "list_repo_files"):
        monkeypatch.setattr(HfApi, name, lambda api, *a, _n=name, **k: getattr(hub, _n)(api, *a, **k))
    readme = tmp_path / "README.md"
    readme.write_text("# a card without configs\n")
    monkeypatch.setattr("huggingface_hub.hf_hub_download", lambda *a, **k: str(readme))

    class Session:  # the reachability probe's HTTP HEAD: the hub answers
        def head(self, url, timeout=None):
            return httpx2.Response(200, request=httpx2.Request("HEAD", url))

    monkeypatch.setattr("huggingface_hub.utils.get_session", lambda: Session())
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return hub


def test_online_every_refusal_names_the_key_the_id_and_the_fix(online_hub):
    config = {
        "base_models": {"llama3": {"model": "meta-llama/Meta-Llama-3-8B-Instruct"},
                        "gone": {"model": "acme/no-such-model"},
                        "pinned": {"model": "google/gemma-2b-it", "revision": "v0.9-missing"},
                        "fine": {"model": "google/gemma-2-9b-it", "revision": "v1"},
                        "local": {"model": "/data/models/mine"}},
        "datasets": {"bon": {"path": "RLHFlow/Mistral-GSM8K-Test", "split": "test"},
                     "prefs": {"path": "nvidia/HelpSteer2", "data_dir": "preference"},
                     "nodir": {"path": "nvidia/HelpSteer2", "data_dir": "disagreements"},
                     "attrs": {"path": "nvidia/HelpSteer2", "split": "validation"}},
        "methods": {"tree": {"bases": {"fine": {"options": {"backbone": "acme/no-such-model"}}}}},
    }
    problems = hub_check.check(config)
    assert problems == [
        "base_models.llama3.model: meta-llama/Meta-Llama-3-8B-Instruct is gated and this account has no access: "
        "accept its licence on https://huggingface.co/meta-llama/Meta-Llama-3-8B-Instruct and run `hf auth login` "
        "(or set HF_TOKEN) where the jobs run",
        "base_models.gone.model: acme/no-such-model does not exist on the hub (or is private: `hf auth login`)",
        "base_models.pinned.model: google/gemma-2b-it has no revision 'v0.9-missing'",
        "datasets.bon.split: RLHFlow/Mistral-GSM8K-Test has no split 'test' (it has: train)",
        "datasets.nodir.path: nvidia/HelpSteer2 has no data_dir 'disagreements'",
    ]  # the backbone repeats an id already refused under the same revision: checked once, named once
    assert len(hub_check.hub_refs(config)) == 8  # the local base is not a hub reference


def test_a_clean_config_passes_and_the_cli_says_so(online_hub, tmp_path, capsys):
    layer = tmp_path / "ok.yaml"
    layer.write_text("base_models:\n  b: {model: google/gemma-2-9b-it}\n"
                     "datasets:\n  d: {path: nvidia/HelpSteer2, data_dir: preference}\n")
    hub_check.main([str(layer)])
    assert "all 2 hub references can be loaded" in capsys.readouterr().out


def test_an_unreachable_hub_checks_the_cache_without_switching_the_jobs_offline(monkeypatch, tmp_path):
    """The SLURM run's jobs inherit the submitting process's environment: the pre-flight must not set the offline
    variables there (the nodes probe for themselves)."""
    import os

    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # connection refused
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    problems = hub_check.check({"base_models": {"b": {"model": "google/gemma-2-9b-it"}}})
    assert problems == ["base_models.b.model: google/gemma-2-9b-it@main is not in the Hugging Face cache and the "
                        "hub cannot be reached; on a machine with access: `hf download google/gemma-2-9b-it` into "
                        "this HF_HOME"]
    assert not any(os.environ.get(v) for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def test_a_hub_error_while_checking_is_a_named_problem_not_a_traceback(online_hub, monkeypatch):
    def overloaded(api, repo_id, **_):
        raise RuntimeError("503 Service Unavailable")

    monkeypatch.setattr(HfApi, "auth_check", overloaded)
    assert hub_check.check({"base_models": {"b": {"model": "google/gemma-2-9b-it"}}}) == [
        "base_models.b.model: could not check google/gemma-2-9b-it (RuntimeError: 503 Service Unavailable)"]


def test_paths_to_models_the_run_trains_are_not_hub_references():
    """Found by the SLURM tests: a reward model declared at results/models/bt/tiny (made by this very run, so not yet
    on disk when the pre-flight runs) was checked as a hub id and refused."""
    config = {"reward_models": {"own": {"model": "results/models/bt/tiny_llama"},
                                "released": {"model": "sfairXC/FsfairX-LLaMA3-RM-v0.1"}},
              "base_models": {"b": {"model": "gpt2"}}}
    assert [r.repo_id for r in hub_check.hub_refs(config)] == ["gpt2", "sfairXC/FsfairX-LLaMA3-RM-v0.1"]
