"""Fail fast without network: probe the hub once and switch this process to offline mode if it is unreachable.

huggingface_hub retries an unreachable host with back-off (about 25 s per file here); in offline mode a cached
model or dataset still loads and anything else fails at once, which the loaders turn into a "use a local path"
message. The probe is an HTTP request through the hub client's own session, so it goes where the downloads go
(through HTTPS_PROXY on clusters whose nodes reach the hub only through a proxy).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


def looks_local(ref: str) -> bool:
    """A reference is a local path when it exists or is spelled like one (./x, ../x, /x, ~/x, x.jsonl); else it is a
    hub id."""
    return (
        os.path.exists(os.path.expanduser(ref))
        or ref.startswith(("/", "./", "../", "~"))
        or ref.endswith(LOCAL_SUFFIXES)
    )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_unreachable(endpoint: str, timeout: float = 3.0) -> str | None:
    """Why the hub does not answer (None when it does), asked with the hub client's own HTTP session, so the
    proxy settings a cluster's nodes need (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) apply as they do for every download.
    Any HTTP answer counts as reachable (an unknown path or a gated repo is the load's business), except a proxy
    that refuses to forward (407)."""
    from huggingface_hub.utils import get_session

    try:
        response = get_session().head(endpoint.rstrip("/") + "/", timeout=timeout)
    except Exception as exc:  # httpx/requests raise their own types for DNS, refused, timeout, proxy errors
        return f"{type(exc).__name__}: {exc}"
    if response.status_code == 407:
        return "the proxy asks for authentication (HTTP 407)"
    return None


def offline_requested() -> bool:
    """Whether the environment already asks for offline mode (HF_HUB_OFFLINE and its siblings)."""
    return any(_truthy(os.environ.get(v)) for v in OFFLINE_VARS)


def go_offline_if_unreachable(timeout: float = 3.0) -> bool:
    """Return True when this process runs offline (already set, or the hub did not answer within ``timeout``)."""
    if offline_requested():
        return True
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    reason = hub_unreachable(endpoint, timeout)
    if reason is None:
        return False
    log.warning("hub %s unreachable (%s): offline mode, only locally cached files can load", endpoint, reason)
    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    # modules imported before this point read the flag at import time
    import sys

    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True
    return True


def resolved_commit(repo_id: str, revision: str | None = None, repo_type: str = "model") -> str | None:
    """The hub commit a reference resolves to, for the records (rmflow_run.json, metrics.json, scores.json): the
    revision itself when it is a full commit hash; else what the Hugging Face cache's ref names (the snapshot an
    offline load used); else, online, the hub's answer. None for a local path or when nothing knows."""
    import re
    from pathlib import Path

    if looks_local(repo_id):
        return None
    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    from huggingface_hub import constants

    ref = Path(constants.HF_HUB_CACHE) / f"{repo_type}s--{repo_id.replace('/', '--')}" / "refs" / (revision or "main")
    if ref.is_file():
        return ref.read_text(encoding="utf-8").strip()
    if go_offline_if_unreachable():
        return None
    try:
        from huggingface_hub import HfApi

        info = (HfApi().dataset_info if repo_type == "dataset" else HfApi().model_info)(repo_id, revision=revision)
        return info.sha
    except Exception as exc:  # gated, missing, network: the record says unresolved, the load itself decides
        log.info("could not resolve the commit of %s %s@%s: %s", repo_type, repo_id, revision or "main", exc)
        return None


def hub_record(repo_id: str, revision: str | None = None, repo_type: str = "model",
               commit: str | None = None) -> dict | None:
    """{id, revision, commit} of a hub reference (None for a local path): what a paper's table must cite."""
    if looks_local(repo_id):
        return None
    return {"id": repo_id, "revision": revision or "main",
            "commit": commit or resolved_commit(repo_id, revision, repo_type)}
