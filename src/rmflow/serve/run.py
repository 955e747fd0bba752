"""``rmflow serve``: load the model, bind the socket, print the URL, run uvicorn until stopped."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from pathlib import Path

from rmflow.errors import RmflowError
from rmflow.options import SCORE_BATCH_SIZE

log = logging.getLogger(__name__)
TOKEN_ENV = "RMFLOW_SERVE_TOKEN"  # the bearer token, from the environment (a command line is visible to `ps`)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def read_token(token_file: str | None) -> str | None:
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RmflowError(f"cannot read the bearer token ({exc.strerror})", file=token_file) from exc
        if not token:
            raise RmflowError("is empty", file=token_file)
        return token
    return os.environ.get(TOKEN_ENV) or None


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RmflowError(f"cannot listen on {host}:{port} ({exc.strerror})", field="port") from exc
    sock.listen(128)
    return sock


def main(model_dir: str, host: str, port: int, limits, token_file: str | None = None,
         policy_tokenizer: str | None = None, served_name: str | None = None, url_file: str | None = None,
         batch_size: int = SCORE_BATCH_SIZE) -> None:
    import uvicorn

    from rmflow.io import write_text
    from rmflow.models.load import default_device, load_tokenizer
    from rmflow.serve.app import create_app
    from rmflow.serve.engine import RewardEngine

    token = read_token(token_file)
    if not _is_loopback(host) and not token:
        log.warning("listening on %s without a bearer token: anyone who reaches this port can use the model "
                    "(set %s or --token-file)", host, TOKEN_ENV)
    os.environ["RMFLOW_TOKEN_CACHE"] = "off"  # requests are not a data set: nothing to cache on disk
    engine = RewardEngine(model_dir, device=default_device(), batch_size=batch_size)
    policy = load_tokenizer(policy_tokenizer) if policy_tokenizer else None
    app = create_app(engine, limits, token, policy, served_name)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}"
    if url_file:
        write_text(Path(url_file), url + "\n")
    print(f"rmflow serve: {engine.name} ({engine.kind}) at {url}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=False, timeout_graceful_shutdown=5)).run(
        sockets=[sock])
