"""Fail fast without network: probe the hub once and switch this process to offline mode if it is unreachable.

huggingface_hub retries an unreachable host with back-off (about 25 s per file here); in offline mode a cached
model or dataset still loads and anything else fails at once, which the loaders turn into a "use a local path"
message.
"""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlparse

log = logging.getLogger(__name__)

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def go_offline_if_unreachable(timeout: float = 3.0) -> bool:
    """Return True when this process runs offline (already set, or the hub did not answer within ``timeout``)."""
    if any(_truthy(os.environ.get(v)) for v in OFFLINE_VARS):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
        return False
    except OSError as exc:
        log.warning("hub %s unreachable (%s): offline mode, only locally cached files can load", endpoint.netloc, exc)
    for var in OFFLINE_VARS:
        os.environ[var] = "1"
    # modules imported before this point read the flag at import time
    import sys

    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].constants.HF_HUB_OFFLINE = True
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True
    return True
