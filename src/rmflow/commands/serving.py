"""Serving commands: a trained model as an HTTP reward server, or exported as a plain checkpoint for RLHF trainers."""

from __future__ import annotations

from dataclasses import dataclass

from rmflow.errors import RmflowError
from rmflow.options import Command, Compute, opt, set_threads
from rmflow.serve import Limits


@dataclass(kw_only=True)
class Export:
    model_dir: str = opt(help="a model rmflow trained whose reward is one linear head (bt, odin, orm_scalar)")
    out: str = opt(help="the checkpoint folder to write", writes="dir")
    scores: list[str] | None = opt(None, "scores.json files for the model card (default: the results/eval/ ones of "
                                         "this method and base)")


def export(a: Export) -> None:
    from rmflow.serve import export

    record = export.main(a.model_dir, a.out, a.scores)
    print(f"exported {record['base']}/{record['method']} to {a.out} "
          f"(plain transformers reproduces its scores to {record['max_probe_difference']:.1e})")


@dataclass(kw_only=True)
class Serve(Compute):
    model_dir: str = opt(help="a model rmflow trained (any method) or exported")
    host: str = opt("127.0.0.1", "address to listen on (loopback unless told otherwise)")
    port: int = opt(8000, "port (0: any free one; the URL is printed and written to --url-file)")
    url_file: str | None = opt(None, "write the server's URL here once it listens (for a trainer's job to read)")
    token_file: str | None = opt(None, "a file holding the bearer token clients must send (or $RMFLOW_SERVE_TOKEN)")
    policy_tokenizer: str | None = opt(None, "the policy's tokenizer (folder or hub id): the template /get_reward "
                                             "queries arrive in (default: the model's own, then known families)")
    served_model_name: str | None = opt(None, "the name in /v1/models and answers (default: <base>/<method>)")
    max_inputs: int = opt(Limits.max_inputs, "conversations per request")
    max_input_tokens: int | None = opt(None, "tokens per conversation (default: the model's context length)")
    max_body_mb: float = opt(Limits.max_body_bytes / (1 << 20), "request body size limit")
    max_batch_tokens: int = opt(Limits.max_batch_tokens, "tokens the batcher gathers for one forward call")
    max_wait_ms: float = opt(Limits.max_wait_ms, "how long the batcher waits for more requests")
    max_queued: int = opt(Limits.max_queued_items, "queued conversations beyond which requests get 429")

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_inputs", "max_batch_tokens", "max_queued"):
            if getattr(self, name) < 1:
                raise RmflowError(f"must be at least 1, not {getattr(self, name)}", field=name.replace("_", "-"))
        if not 0 <= self.port <= 65535:
            raise RmflowError(f"must be 0-65535, not {self.port}", field="port")
        if self.max_wait_ms < 0 or self.max_body_mb <= 0:
            raise RmflowError("must be positive", field="max-wait-ms" if self.max_wait_ms < 0 else "max-body-mb")


def serve(a: Serve) -> None:
    from rmflow.serve import run

    set_threads(a.threads)
    limits = Limits(max_inputs=a.max_inputs, max_input_tokens=a.max_input_tokens,
                    max_body_bytes=int(a.max_body_mb * (1 << 20)), max_batch_tokens=a.max_batch_tokens,
                    max_wait_ms=a.max_wait_ms, max_queued_items=a.max_queued)
    run.main(a.model_dir, a.host, a.port, limits, a.token_file, a.policy_tokenizer, a.served_model_name, a.url_file,
             a.batch_size)


COMMANDS = [
    Command("export", "a one-head scalar model as a checkpoint vLLM, TRL, OpenRLHF and verl load as they are",
            Export, export),
    Command("serve", "serve a trained model over HTTP: vLLM's /classify and /pooling, OpenRLHF's /get_reward, group "
                     "rewards for pairwise models", Serve, serve),
]
