"""Load any hub or local model for reward modelling: pad token, ``pad_token_id``, no remote code by default."""

from __future__ import annotations

import logging
import os

from rmflow.errors import RmflowError
from rmflow.hub import looks_local

log = logging.getLogger(__name__)

NEW_PAD_TOKEN = "[PAD]"


def default_device() -> str:
    """CUDA when there is a GPU, else CPU: scoring and embedding use it (training goes through accelerate)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_model_ref(ref: str, field: str = "model") -> None:
    """A local-looking reference must exist and its weights be readable (every shard present, no file cut short);
    a hub id is checked when it is loaded."""
    if looks_local(ref) and not os.path.isdir(os.path.expanduser(ref)):
        raise RmflowError(f"base model path '{ref}' does not exist or is not a directory", field=field)
    if looks_local(ref):
        from rmflow.models.weights import check_model_dir

        check_model_dir(ref)


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
    memory (an 8B RM: 16 instead of 32 GB; the tree's 27B backbone would not fit an 80 GB GPU in fp32). A model
    rmflow did not train keeps its stored dtype on a GPU. CPU runs stay fp32, whatever the checkpoint stores (a bf16
    hub checkpoint is upcast)."""
    import torch

    if not torch.cuda.is_available():
        return torch.float32
    if bf16 is None:
        from rmflow.train.config import TrainConfig

        run = _recorded_run(ref)
        if not run:  # not trained by rmflow (a released RM): the dtype its checkpoint stores
            return None
        bf16 = TrainConfig.from_dict({k: v for k, v in run.get("train", {}).items()
                                      if k in ("bf16", "precision")}).bf16
    return torch.bfloat16 if bf16 else torch.float32


def load_for_scoring(ref: str, tokenizer, *, bf16: bool | None = None, attn_implementation: str | None = None,
                     **kwargs):
    """``load_model`` for inference: eval mode, the dtype ``scoring_dtype`` picks, the attention the model was
    trained with unless ``attn_implementation`` says otherwise."""
    attention = attn_implementation or _recorded_run(ref).get("attn_implementation")
    return load_model(ref, tokenizer, dtype=scoring_dtype(ref, bf16), attn_implementation=attention,
                      **kwargs).eval()


def load_for_training(ref: str, tokenizer, **kwargs):
    """``load_model`` with fp32 weights, whatever the checkpoint stores: the optimizer's master copy must be fp32
    (train.precision bf16-mixed computes in bf16 under autocast; DeepSpeed casts to bf16 itself and keeps fp32
    master weights). transformers 5 would otherwise load a hub checkpoint in its stored bf16."""
    import torch

    return load_model(ref, tokenizer, dtype=torch.float32, **kwargs)


def load_for_run(spec, start: str, **kwargs):
    """The tokenizer and the fp32 model a training run starts from (``start``: the spec's base, or the model an
    SSRM round continues), with the base's revision, remote-code rule, system-turn rule and attention."""
    tokenizer = load_tokenizer(start, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
                               system_turn=spec.system_turn)
    model = load_for_training(start, tokenizer, revision=spec.revision, trust_remote_code=spec.trust_remote_code,
                              attn_implementation=spec.attn_implementation, **kwargs)
    return tokenizer, model


ATTENTION = ("eager", "sdpa", "flash_attention_2")


def choose_attention(requested: str | None) -> tuple[str | None, str | None]:
    """The attention implementation to ask transformers for, and why it differs from ``requested`` (or None).

    None lets transformers pick its default: SDPA where the architecture supports it, else eager (Gemma-2 in
    transformers 5). ``flash_attention_2`` is used only where flash-attn is installed and CUDA is visible; elsewhere
    the default is used and the reason is logged and recorded."""
    import importlib.util

    import torch

    if requested is None:
        return None, None
    if requested not in ATTENTION:
        raise RmflowError(f"must be one of {', '.join(ATTENTION)}, not {requested!r}", field="attn_implementation")
    if requested == "flash_attention_2":
        missing = ("flash-attn is not installed" if importlib.util.find_spec("flash_attn") is None
                   else None if torch.cuda.is_available() else "no CUDA device is visible")
        if missing:
            log.warning("attn_implementation flash_attention_2 asked for, but %s: using the default", missing)
            return None, f"flash_attention_2 asked for, {missing}"
    return requested, None


def attention_of(model) -> str:
    """The attention implementation a loaded model runs (recorded in metrics.json and scores.json)."""
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    fallback = getattr(model, "rmflow_attention_note", None)
    return f"{implementation} ({fallback})" if fallback else implementation


def load_model(ref: str, tokenizer, *, auto_class: str = "AutoModelForSequenceClassification",
               revision: str | None = None, trust_remote_code: bool = False, dtype=None,
               attn_implementation: str | None = None, model_class=None, **kwargs):
    """Load ``ref`` with the given auto class (or rmflow's own ``model_class``, which runs no code of the
    repository's), resize for an added pad token and set ``pad_token_id``.

    ``dtype`` None keeps transformers' default (the checkpoint's stored dtype); training goes through
    ``load_for_training`` (fp32) and scoring through ``load_for_scoring``."""
    import transformers
    from safetensors import SafetensorError

    check_model_ref(ref)
    _prepare_hub(ref)
    cls = model_class or getattr(transformers, auto_class)
    if not trust_remote_code and model_class is None:
        from rmflow.models.custom_forward import custom_code_of

        code = custom_code_of(ref, auto_class, revision)
        if code:  # without its code transformers would build the plain architecture and drop the model's own head
            raise RmflowError(f"'{ref}' ships its own modelling code for {auto_class} ({code}, in its config.json "
                              "auto_map); rmflow runs a model's own code only when that model's declaration sets "
                              "trust_remote_code: true (never globally)", field="trust_remote_code")
    attention, note = choose_attention(attn_implementation)
    if attention:
        kwargs["attn_implementation"] = attention
    try:
        # use_safetensors: a hub repository offering only pickle weights is refused, never unpickled
        model = cls.from_pretrained(
            os.path.expanduser(ref), revision=revision, trust_remote_code=trust_remote_code, dtype=dtype,
            use_safetensors=True, **kwargs
        )
    except ValueError as exc:
        if attention and ("attn_implementation" in str(exc) or "does not support" in str(exc)):
            raise RmflowError(f"'{ref}' cannot run attn_implementation {attention}: {exc}",
                              field="attn_implementation") from exc
        raise _hub_hint(ref, exc) from exc
    except OSError as exc:
        raise _hub_hint(ref, exc) from exc
    except SafetensorError as exc:  # a header that passed check_model_dir (a hub file) but not safetensors itself
        raise RmflowError(f"unreadable weights of '{ref}': {exc}", field="model") from exc
    except ImportError as exc:
        if not trust_remote_code:
            raise
        raise remote_code_error(ref, auto_class, revision, exc) from exc
    model.rmflow_attention_note = note
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        # the new [PAD] row is only ever read at masked positions: a plain init, not transformers' mean-resizing
        # (which samples from the embeddings' covariance and takes seconds on a 49k x 576 table)
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model


def remote_code_error(ref: str, auto_class: str, revision: str | None, exc: ImportError) -> RmflowError:
    """A model's own code that no longer imports (RLHFlow's ArmoRM under transformers 5: ``LLAMA_INPUTS_DOCSTRING``
    is gone), said with the model, the import, the installed transformers and the way out, instead of a traceback."""
    import transformers

    from rmflow.models.custom_forward import custom_code_of

    code = custom_code_of(ref, auto_class, revision) or "its modelling file"
    return RmflowError(
        f"the own code of '{ref}' ({code}) does not import under the installed transformers "
        f"{transformers.__version__}: {exc}. For RLHFlow's ArmoRM declare scorer: armo (rmflow's implementation of "
        "its architecture; no remote code); otherwise score it in an environment with the transformers version its "
        "code was written for", field="trust_remote_code")


def base_tensor(ref: str, name: str, revision: str | None = None):
    """One tensor of a model's safetensors weights, read alone (e.g. an untied ``lm_head.weight`` that a
    ``*ForSequenceClassification`` load leaves out): from a local folder, or the hub snapshot transformers already
    fetched (or fetches) at ``revision``."""
    from pathlib import Path

    from safetensors import safe_open

    if looks_local(ref):
        folder = Path(os.path.expanduser(ref))
    else:
        from huggingface_hub import snapshot_download

        _prepare_hub(ref)
        try:
            folder = Path(snapshot_download(ref, revision=revision, allow_patterns=["*.safetensors", "*.json"]))
        except Exception as exc:  # offline and not cached, gated, missing: the same hint as a model load
            raise _hub_hint(ref, exc) from exc
    for path in sorted(folder.glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as weights:
            if name in weights.keys():
                return weights.get_tensor(name)
    raise RmflowError(f"no tensor '{name}' in the model's safetensors files", file=str(folder))
