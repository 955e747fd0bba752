"""``rmflow hub-check`` (and the SLURM run's ``onstart``): every hub reference of a config checked before anything is
submitted, so a licence never accepted, a revision that does not exist or a split the data set lacks is one line
now instead of a failed job hours into the run.

Online, with the hub client (token and proxies as for downloads): the repository exists and this account may read
it (a gated model whose licence was not accepted names the id and ``hf auth login``), the revision exists, and a
data set has its ``data_dir`` and split. Offline (``HF_HUB_OFFLINE`` or an unreachable hub): each reference must be in
the Hugging Face cache at its revision, with its split, since no job can download it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubRef:
    kind: str  # "model" or "dataset"
    repo_id: str
    revision: str | None
    where: str  # the config key that names it
    split: str | None = None
    data_dir: str | None = None


def is_hub_id(ref: str) -> bool:
    """``name`` or ``namespace/name`` as the hub spells repository ids; a longer path (``results/models/bt/x``, a
    model this run trains) is a local one even before it exists."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(ref)
    except HFValidationError:
        return False
    return True


def hub_refs(config: dict) -> list[HubRef]:
    """The hub references a resolved config names, each with the key that names it (local paths left out)."""
    from rmflow.hub import looks_local

    refs: list[HubRef] = []

    def add(kind, repo_id, revision, where, **extra):
        if isinstance(repo_id, str) and is_hub_id(repo_id) and not looks_local(repo_id):
            refs.append(HubRef(kind, repo_id, revision, where, **extra))

    for name, base in (config.get("base_models") or {}).items():
        add("model", (base or {}).get("model"), (base or {}).get("revision"), f"base_models.{name}.model")
    for name, rm in (config.get("reward_models") or {}).items():
        add("model", (rm or {}).get("model"), (rm or {}).get("revision"), f"reward_models.{name}.model")
    for section, default_split in (("datasets", "train"), ("eval_sets", "filtered")):
        for name, entry in (config.get(section) or {}).items():
            entry = entry or {}
            paths = entry.get("path") if isinstance(entry.get("path"), list) else [entry.get("path")]
            revision = entry.get("revision")  # one for every path, or (eval sets) one per path
            revisions = revision if isinstance(revision, list) else [revision] * len(paths)
            split = entry.get("split") or default_split
            for path, path_revision in zip(paths, revisions):
                for one_split in split if isinstance(split, list) else [split]:
                    add("dataset", path, path_revision, f"{section}.{name}.path", split=one_split,
                        data_dir=entry.get("data_dir"))
    for method, entry in (config.get("methods") or {}).items():
        bases = (entry or {}).get("bases")
        blocks = [("", entry or {})] + [(f".bases.{b}", v or {}) for b, v in bases.items()] \
            if isinstance(bases, dict) else [("", entry or {})]
        named = _hub_model_options(method)
        for suffix, block in blocks:
            options = block.get("options") or {}
            for option, revision in named:
                add("model", options.get(option), options.get(revision), f"methods.{method}{suffix}.options.{option}")
    unique = {}
    for ref in refs:  # one check per (repository, revision, split, data_dir); the first key names it
        unique.setdefault((ref.kind, ref.repo_id, ref.revision, ref.split, ref.data_dir), ref)
    return list(unique.values())


def _hub_model_options(method: str) -> tuple:
    """The options of a method that name a hub model (a frozen backbone; the judge's own model)."""
    from rmflow import methods

    try:
        module = methods.get(method)
    except RmflowError:  # an unknown method: the plan names it; nothing of it to check on the hub
        return ()
    return methods.hook(module, "HUB_MODELS", (("backbone", "backbone_revision"),))


def _splits_in(folder: str, data_dir: str | None) -> list[str]:
    """The split names ``datasets`` finds in a data-set folder (file names, the card's configs), reading no rows."""
    import datasets

    builder = datasets.load_dataset_builder(folder, data_dir=data_dir)
    return sorted((builder.config.data_files or {}).keys())


def _check_offline(ref: HubRef) -> str | None:
    from huggingface_hub import snapshot_download

    patterns = ["config.json"] if ref.kind == "model" else \
        ([f"{ref.data_dir.strip('/')}/*", "README.md"] if ref.data_dir else None)
    try:
        folder = snapshot_download(ref.repo_id, repo_type=ref.kind, revision=ref.revision, allow_patterns=patterns,
                                   local_files_only=True)
    except Exception:  # LocalEntryNotFoundError and friends: not cached at this revision
        download = f"hf download {'--repo-type dataset ' if ref.kind == 'dataset' else ''}{ref.repo_id}" + \
            (f" --revision {ref.revision}" if ref.revision else "")
        return (f"{ref.where}: {ref.repo_id}@{ref.revision or 'main'} is not in the Hugging Face cache and the hub "
                f"cannot be reached; on a machine with access: `{download}` into this HF_HOME")
    return _check_split(ref, folder)


def _check_split(ref: HubRef, folder: str) -> str | None:
    if ref.kind != "dataset" or ref.split is None:
        return None
    import os

    if ref.data_dir and not os.path.isdir(os.path.join(folder, ref.data_dir)):
        return f"{ref.where}: {ref.repo_id} has no data_dir '{ref.data_dir}'"
    try:
        splits = _splits_in(folder, ref.data_dir)
    except Exception as exc:  # an unreadable card or no data files: said, not a traceback
        return f"{ref.where}: cannot tell the splits of {ref.repo_id} ({type(exc).__name__}: {exc})"
    if ref.split not in splits:
        key = ref.where.rsplit(".", 1)[0] + ".split"
        return f"{key}: {ref.repo_id} has no split '{ref.split}' (it has: {', '.join(splits) or 'none'})"
    return None


def _check_online(ref: HubRef) -> str | None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    try:
        api.auth_check(ref.repo_id, repo_type=ref.kind)
    except GatedRepoError:
        return (f"{ref.where}: {ref.repo_id} is gated and this account has no access: accept its licence on "
                f"https://huggingface.co/{'datasets/' if ref.kind == 'dataset' else ''}{ref.repo_id} and run "
                "`hf auth login` (or set HF_TOKEN) where the jobs run")
    except RepositoryNotFoundError:
        return f"{ref.where}: {ref.repo_id} does not exist on the hub (or is private: `hf auth login`)"
    try:
        api.repo_info(ref.repo_id, repo_type=ref.kind, revision=ref.revision)
    except RevisionNotFoundError:
        return f"{ref.where}: {ref.repo_id} has no revision '{ref.revision}'"
    if ref.kind != "dataset":
        return None
    # the card and the file names decide the splits: lay the names out as empty files beside the real card, so
    # datasets' own resolution runs on them without a single row downloaded
    import tempfile
    from pathlib import Path

    from huggingface_hub import hf_hub_download

    files = api.list_repo_files(ref.repo_id, repo_type="dataset", revision=ref.revision)
    if ref.data_dir and not any(f.startswith(ref.data_dir.strip("/") + "/") for f in files):
        return f"{ref.where}: {ref.repo_id} has no data_dir '{ref.data_dir}'"
    with tempfile.TemporaryDirectory() as tmp:
        for name in files:
            target = Path(tmp, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            if name == "README.md":
                target.write_bytes(Path(hf_hub_download(ref.repo_id, name, repo_type="dataset",
                                                        revision=ref.revision)).read_bytes())
            else:
                target.touch()
        return _check_split(ref, tmp)


def check(config: dict) -> list[str]:
    """One line per problem (empty: every hub reference can be loaded where the jobs run)."""
    import os

    from rmflow.hub import hub_unreachable, offline_requested

    # asked without switching this process offline: the SLURM run's jobs inherit its environment and probe for
    # themselves (compute nodes may reach the hub where the login node does not, or the other way round)
    offline = offline_requested() or \
        hub_unreachable(os.environ.get("HF_ENDPOINT", "https://huggingface.co")) is not None
    problems = []
    for ref in hub_refs(config):
        try:
            problem = _check_offline(ref) if offline else _check_online(ref)
        except Exception as exc:  # a timeout, a 5xx, a rate limit: said with the reference, never a traceback
            problem = f"{ref.where}: could not check {ref.repo_id} ({type(exc).__name__}: {exc})"
        log.info("%s %s@%s: %s", ref.kind, ref.repo_id, ref.revision or "main", problem or "ok")
        if problem:
            problems.append(problem)
    return problems


def main(config_files: list[str]) -> None:
    from rmflow.config import _read, merge_layers

    config = merge_layers([_read(p) for p in config_files])
    refs = hub_refs(config)
    problems = check(config)
    if problems:
        raise RmflowError(f"{len(problems)} of {len(refs)} hub references cannot be loaded:\n  "
                          + "\n  ".join(problems))
    print(f"hub-check: all {len(refs)} hub references can be loaded")
