"""The wire formats ``rmflow serve`` speaks, as pydantic models (FastAPI validates every request against them).

- vLLM's pooling API (``POST /classify``, ``/v1/classify`` as SGLang names it, ``/pooling``): ``input`` (a string,
  a list of strings, token ids or lists of them) or chat-style ``messages``; ``use_activation`` (older clients:
  ``activation``). Fields vLLM takes that change nothing here (``user``, ``priority``, ``truncate_prompt_tokens``,
  ``encoding_format``...) are accepted and ignored, so a client written for vLLM works unchanged.
- OpenRLHF's remote reward model (``POST /get_reward``): ``query`` (the policy's chat-templated prompt + response),
  ``prompts`` and ``labels``; answered with ``rewards``, ``scores`` and ``extra_logs``.
- Group rewards (``POST /v1/group_rewards``): one prompt, its completions, one reward each.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    content: str


TextOrTokens = Union[str, list[str], list[int], list[list[int]]]


class PoolingRequest(BaseModel):
    """``/classify`` and ``/pooling``: ``input`` or ``messages``, exactly one."""
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: TextOrTokens | None = None
    messages: list[Message] | None = None
    use_activation: bool | None = None
    activation: bool | None = None  # the name before vLLM 0.11

    def activated(self) -> bool:
        """vLLM's default: the activation (sigmoid for one label) is applied unless the client turns it off."""
        for value in (self.use_activation, self.activation):
            if value is not None:
                return value
        return True


class RewardRequest(BaseModel):
    """OpenRLHF's ``/get_reward`` body (openrlhf/cli/serve_rm.py)."""
    model_config = ConfigDict(extra="ignore")
    query: list[str]
    prompts: list[str] | None = None
    labels: list | None = None


class GroupRequest(BaseModel):
    """One prompt (``messages`` before the answer, or ``prompt`` as one user turn) and its completions."""
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[Message] | None = None
    prompt: str | None = None
    responses: list[str] = Field(min_length=1)
    mode: Literal["round_robin", "knockout"] = "round_robin"
