"""Load any hub or local model for reward modelling: pad token, ``pad_token_id``, no remote code by default."""

from __future__ import annotations

import logging
import os

from rmflow.data.loaders import looks_local
from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

NEW_PAD_TOKEN = "[PAD]"


def default_device() -> str:
    """CUDA when there is a GPU, else CPU: scoring and embedding use it (training goes through accelerate)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_model_ref(ref: str, field: str = "model") -> None:
    """A local-looking reference must exist; a hub id is checked when it is loaded."""
    if looks_local(ref) and not os.path.isdir(os.path.expanduser(ref)):
        raise RmflowError(f"base model path '{ref}' does not exist or is not a directory", field=field)


def _prepare_hub(ref: str) -> None:
    if not looks_local(ref):
        from rmflow.hub import go_offline_if_unreachable

        go_offline_if_unreachable()


def _hub_hint(ref: str, exc: Exception) -> RmflowError:
    return RmflowError(
        f"could not load model '{ref}': {type(exc).__name__}: {exc}. If this machine is offline, download the "
        "model elsewhere (e.g. `hf download <id> --local-dir DIR`) and set the base model's 'model' to DIR."
    )


def load_tokenizer(ref: str, *, revision: str | None = None, trust_remote_code: bool = False,
                   system_turn: str | None = None):
    """Load a tokenizer; give it a dedicated pad token when it has none (Llama-3, Mistral).

    ``system_turn`` is how a conversation's leading system turn is rendered (``template``: by the chat template;
    ``merge``: into the first user turn, for templates such as Gemma's that reject system turns; ``error``: refused).
    It travels on the tokenizer (``render`` reads it); when not given it comes from the model's ``rmflow_run.json``
    (the base's rule, recorded at training time), else ``template``."""
    from transformers import AutoTokenizer

    check_model_ref(ref)
    _prepare_hub(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            os.path.expanduser(ref), revision=revision, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as exc:
        raise _hub_hint(ref, exc) from exc
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        # pad == eos breaks pooling because EOS also occurs inside chat templates (Llama-3, TRL #2758).
        tokenizer.add_special_tokens({"pad_token": NEW_PAD_TOKEN})
        log.info("added pad token %s (id %d) to %s", NEW_PAD_TOKEN, tokenizer.pad_token_id, ref)
    tokenizer.rmflow_system_turn = system_turn or _recorded_system_turn(ref)
    if tokenizer.chat_template is None:
        raise RmflowError(f"tokenizer of '{ref}' has no chat template; reward models here render conversations "
                          "with it. Use an instruct/chat model or add a template to its tokenizer_config.json.")
    return tokenizer


def _recorded_run(ref: str) -> dict:
    """The ``rmflow_run.json`` a trained model directory carries (empty for other models)."""
    import json

    path = os.path.join(os.path.expanduser(ref), "rmflow_run.json")
    return json.loads(open(path, encoding="utf-8").read()) if os.path.isfile(path) else {}


def _recorded_system_turn(ref: str) -> str:
    return _recorded_run(ref).get("system_turn", "template")


def scoring_dtype(ref: str, bf16: bool | None = None):
    """Weights for inference: bf16 on a GPU when the run trained in bf16 (or ``bf16`` asks for it), else fp32.

    A model trained under bf16 mixed precision keeps fp32 master weights on disk; scoring it in bf16 halves the
    memory (an 8B RM: 16 instead of 32 GB; the tree's 27B backbone would not fit an 80 GB GPU in fp32). CPU runs
    stay fp32."""
    import torch

    if bf16 is None:
        bf16 = bool(_recorded_run(ref).get("train", {}).get("bf16", False))
    return torch.bfloat16 if bf16 and torch.cuda.is_available() else None


def load_for_scoring(ref: str, tokenizer, *, bf16: bool | None = None, **kwargs):
    """``load_model`` for inference: eval mode, the dtype ``scoring_dtype`` picks."""
    return load_model(ref, tokenizer, dtype=scoring_dtype(ref, bf16), **kwargs).eval()


def load_model(ref: str, tokenizer, *, auto_class: str = "AutoModelForSequenceClassification",
               revision: str | None = None, trust_remote_code: bool = False, dtype=None, **kwargs):
    """Load ``ref`` with the given auto class, resize for an added pad token and set ``pad_token_id``."""
    import transformers

    check_model_ref(ref)
    _prepare_hub(ref)
    cls = getattr(transformers, auto_class)
    try:
        model = cls.from_pretrained(
            os.path.expanduser(ref), revision=revision, trust_remote_code=trust_remote_code, dtype=dtype, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise _hub_hint(ref, exc) from exc
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        # the new [PAD] row is only ever read at masked positions: a plain init, not transformers' mean-resizing
        # (which samples from the embeddings' covariance and takes seconds on a 49k x 576 table)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model
