"""Released reward models that ship their own modelling code (``trust_remote_code``), scored as their authors do.

RLHFlow's ArmoRM (``LlamaForRewardModelWithGating``, mapped by its config's ``auto_map`` from
``AutoModelForSequenceClassification``) has no ``score`` head: its forward returns an output whose ``score`` field
is the reward, beside the per-objective ``rewards`` and the gate's weights. Its model card scores one conversation
at a time: ``model(tokenizer.apply_chat_template(messages, return_tensors="pt")).score``. That is what this scorer
does (batch 1: the remote code locates its own positions in an unpadded sequence, so batching it would change what it
reads), and it keeps the per-objective rewards for ``rmflow explain``.
"""

from __future__ import annotations

import logging

from rmflow.errors import RmflowError

log = logging.getLogger(__name__)


class CustomForwardScorer:
    """A scalar reward read from a named field of a custom model's forward output."""

    kind = "scalar"

    def __init__(self, model, tokenizer, field: str = "score", rewards_field: str | None = "rewards",
                 max_length: int = 4096, truncation_side: str = "left", device: str = "cpu"):
        self.model, self.tokenizer = model.eval().to(device), tokenizer
        self.field, self.rewards_field = field, rewards_field
        self.max_length, self.truncation_side, self.device = max_length, truncation_side, device

    def _outputs(self, conversations: list[list[dict]], progress: bool = True) -> list:
        import torch
        from tqdm.auto import tqdm

        from rmflow.train.batching import encode

        out = []
        with torch.inference_mode():
            for conversation in tqdm(conversations, desc="score (custom forward)", disable=not progress):
                ids = encode(self.tokenizer, conversation, self.max_length, self.truncation_side)
                output = self.model(input_ids=torch.tensor([ids], device=self.device))
                if getattr(output, self.field, None) is None:
                    fields = [k for k in (output.keys() if hasattr(output, "keys") else []) if k]
                    raise RmflowError(f"the forward output of {type(self.model).__name__} has no field "
                                      f"'{self.field}' (it has: {', '.join(fields) or 'none'})", field="reward_field")
                out.append(output)
        return out

    def score_conversations(self, conversations: list[list[dict]], progress: bool = True, groups=None) -> list[float]:
        return [float(getattr(o, self.field).float().reshape(-1)[0]) for o in self._outputs(conversations, progress)]

    def details(self, conversations: list[list[dict]]) -> list[dict]:
        """Per conversation: the score and, where the model returns them, its per-objective rewards."""
        rows = []
        for output in self._outputs(conversations, progress=False):
            row = {"score": float(getattr(output, self.field).float().reshape(-1)[0])}
            rewards = getattr(output, self.rewards_field, None) if self.rewards_field else None
            if rewards is not None:
                row["rewards"] = rewards.float().reshape(-1).tolist()
            rows.append(row)
        return rows

    def score_pairs(self, rows: list[dict]) -> dict:
        n = len(rows)
        scores = self.score_conversations([r["chosen"] for r in rows] + [r["rejected"] for r in rows])
        return {"score_chosen": scores[:n], "score_rejected": scores[n:]}


def custom_code_of(ref: str, auto_class: str, revision: str | None = None) -> str | None:
    """The class a model's own code maps ``auto_class`` to (its config.json's ``auto_map``), or None: read from
    config.json alone (a local file, or one cached/downloaded hub file), before anything of the model is loaded."""
    import json
    import os

    from rmflow.hub import looks_local

    path = os.path.join(os.path.expanduser(ref), "config.json")
    if not looks_local(ref):
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(ref, "config.json", revision=revision)
        except Exception:  # noqa: BLE001 - missing or unreachable: the load itself reports it
            return None
    try:
        with open(path, encoding="utf-8") as fh:
            config = json.load(fh)
    except (OSError, json.JSONDecodeError):
        return None
    return (config.get("auto_map") or {}).get(auto_class)
