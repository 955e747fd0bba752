"""``rmflow build-base``: a base model directory from its spec, a tiny model's shape or a GGUF source."""

from __future__ import annotations

import json

from rmflow.errors import RmflowError


def main(spec_path: str, corpus: str | None, out: str) -> None:
    try:
        spec = json.loads(open(spec_path, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as exc:
        raise RmflowError(f"unreadable base spec ({exc})", file=spec_path) from exc
    if "tiny" in spec:
        from rmflow.models import tiny

        values = spec["tiny"]
        unknown = sorted(set(values) - set(tiny.TinySpec.__dataclass_fields__))
        if unknown:
            raise RmflowError(f"unknown tiny model keys {unknown}", file=spec_path)
        if not corpus:
            raise RmflowError("a tiny base trains its tokenizer on a corpus: pass --corpus", file=spec_path)
        tiny.build(tiny.TinySpec(**values), tiny.corpus_from_pairs(corpus), out)
    elif "gguf" in spec:
        from rmflow.models import gguf

        gguf.build(spec["gguf"], spec.get("chat_template"), out)
    else:
        raise RmflowError("a base spec holds 'tiny' or 'gguf'", file=spec_path)
