"""``rmflow serve``: one trained model behind FastAPI + uvicorn, speaking the reward-server protocols RLHF trainers
use (rmflow.serve.protocol), with dynamic batching (rmflow.serve.batcher), bounded requests and an optional bearer
token. Every reward is the model's ``rmflow evaluate`` score of the same conversation."""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from rmflow.errors import RmflowError
from rmflow.serve import Limits
from rmflow.serve.batcher import Batcher, Busy
from rmflow.serve.chat_text import formats, parse_chat_text
from rmflow.serve.engine import RewardEngine, group_rewards
from rmflow.serve.protocol import GroupRequest, Message, PoolingRequest, RewardRequest

log = logging.getLogger(__name__)
OPEN_PATHS = ("/health", "/ping")  # what a load balancer polls: no token needed


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    # vLLM's and OpenAI's error body, so clients show the message
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": status}},
                        status_code=status, headers=headers)


class BodyLimit:
    """Refuses a body over ``limit`` bytes (413) before it is read whole, with or without a Content-Length."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _error(413, f"request body over {self.limit} bytes", "RequestTooLarge")(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise ApiError(413, f"request body over {self.limit} bytes", "RequestTooLarge")
            return message

        return await self.app(scope, counted, send)


def create_app(engine: RewardEngine, limits: Limits = Limits(), token: str | None = None,
               policy_tokenizer=None, served_name: str | None = None) -> FastAPI:
    """The ASGI app. ``policy_tokenizer``: the policy's tokenizer, whose template ``/get_reward`` queries are in
    (without it the reward model's own template and the known families are tried)."""
    name = served_name or engine.name
    max_tokens = limits.max_input_tokens or engine.context_length or 8192
    model_format = formats(*[t for t in (engine.tokenizer,) if t is not None])
    policy_formats = formats(*[t for t in (policy_tokenizer, engine.tokenizer) if t is not None])
    special = tuple(t for tok in (engine.tokenizer, policy_tokenizer) if tok is not None
                    for t in (tok.pad_token, tok.eos_token) if t)
    batcher = Batcher({"score": engine.score, "compare": engine.compare}, limits.max_batch_tokens,
                      limits.max_wait_ms / 1000, limits.max_queued_items)

    async def lifespan(app):
        batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="rmflow reward server", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher, app.state.engine = batcher, engine

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "missing or wrong bearer token (Authorization: Bearer ...)", "AuthenticationError",
                              {"WWW-Authenticate": "Bearer"})
        try:
            return await call_next(request)
        except ApiError as exc:  # raised while the body was read (BodyLimit)
            return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
                             for e in exc.errors()[:5])
        return _error(400, problems, "BadRequestError")

    @app.exception_handler(RmflowError)
    async def refused(request, exc: RmflowError):
        return _error(400, str(exc), "BadRequestError")

    @app.exception_handler(Busy)
    async def busy(request, exc: Busy):
        return _error(429, f"server busy: {exc}; retry shortly", "RateLimitError", {"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def bug(request, exc: Exception):
        log.exception("request failed")  # the traceback stays in the server's log, never in the answer
        return _error(500, f"internal error ({type(exc).__name__}); see the server log", "InternalServerError")

    # ---- turning requests into conversations -------------------------------------------------------------------
    def check_model(requested: str | None) -> None:
        if requested is not None and requested != name:
            raise ApiError(404, f"the model `{requested}` does not exist (this server serves `{name}`)",
                           "NotFoundError")

    def conversation_of(messages: list[Message], where: str) -> list[dict]:
        chat = [m.model_dump() for m in messages]
        if not chat or chat[-1]["role"] != "assistant" or not any(m["role"] == "user" for m in chat):
            raise ApiError(400, f"{where}: a conversation needs a user turn and ends with the assistant's answer")
        return chat

    def count_checked(n: int) -> None:
        if n > limits.max_inputs:
            raise ApiError(413, f"{n} inputs in one request (limit {limits.max_inputs})", "RequestTooLarge")

    def from_text(texts: list[str], candidates, where: str) -> list[list[dict]]:
        count_checked(len(texts))
        out = []
        for i, text in enumerate(texts):
            chat = parse_chat_text(text, candidates, special)
            if chat is None:
                raise ApiError(400, f"{where}[{i}]: not a conversation in the reward model's chat template or a known "
                                    "one (ChatML, Llama-3, Gemma, Mistral, Tulu); send `messages` instead")
            out.append(chat)
        return out

    def conversations_of(body: PoolingRequest) -> list[list[dict]]:
        if (body.input is None) == (body.messages is None):
            raise ApiError(400, "give exactly one of `input` and `messages`")
        if body.messages is not None:
            return [conversation_of(body.messages, "messages")]
        items = body.input
        if isinstance(items, str):
            items = [items]
        if not items:
            raise ApiError(400, "input: empty")
        if isinstance(items[0], int):
            items = [items]
        if not isinstance(items[0], str):  # token ids: read back as the text they encode
            if engine.tokenizer is None:
                raise ApiError(400, "input: token ids need a model with a tokenizer")
            vocab = len(engine.tokenizer)
            if any(not 0 <= t < vocab for ids in items for t in ids):
                raise ApiError(400, f"input: token ids must lie in [0, {vocab})")
            items = [engine.tokenizer.decode(ids, skip_special_tokens=False) for ids in items]
        return from_text(items, model_format, "input")

    def checked(conversations: list[list[dict]]) -> int:
        count_checked(len(conversations))
        total = 0
        for i, chat in enumerate(conversations):
            n = engine.count_tokens(chat)
            if n > max_tokens:
                raise ApiError(400, f"input {i}: {n} tokens, over this server's limit of {max_tokens}")
            total += n
        return total

    async def rewards_of(conversations: list[list[dict]], tokens: int,
                         keys: list[str] | None = None) -> list[tuple[float, list[float]]]:
        """(reward, vector) per conversation: a scalar model's own; for a pairwise model, group rewards over the
        completions of each prompt (``keys``: which prompt each belongs to; default: the turns before the answer)."""
        if engine.kind == "scalar":
            return await batcher.submit("score", conversations, tokens)
        keys = keys or [repr(c[:-1]) for c in conversations]
        groups = [[i for i, k in enumerate(keys) if k == key] for key in dict.fromkeys(keys)]
        if any(len(members) < 2 for members in groups):
            raise ApiError(400, f"{engine.method} compares answers: send 2 or more completions of each prompt "
                                "(or use /v1/group_rewards)")
        results = await asyncio.gather(*(  # every group's comparisons queued at once: they share batches
            _group(conversations[m[0]][:-1], [conversations[i][-1]["content"] for i in m], "round_robin", tokens)
            for m in groups))
        out: list[tuple[float, list[float]]] = [(0.0, [])] * len(conversations)
        for members, result in zip(groups, results):
            for i, r in zip(members, result["rewards"]):
                out[i] = (r, [r])
        return out

    async def _group(context: list[dict], responses: list[str], mode: str, tokens: int) -> dict:
        async def compare(pairs):
            triples = [(context, responses[i], responses[j]) for i, j in pairs]
            return await batcher.submit("compare", triples, tokens * 2 * len(pairs) // max(len(responses), 1))
        return await group_rewards(len(responses), compare, mode)

    def envelope(kind: str, data: list, tokens: int) -> dict:
        return {"id": f"{kind}-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()), "model": name,
                "data": data, "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}}

    # ---- routes ------------------------------------------------------------------------------------------------
    @app.get("/health")
    @app.get("/ping")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": int(time.time()),
                                             "owned_by": "rmflow", "max_model_len": max_tokens,
                                             "rmflow": {**engine.card(), "batcher": batcher.stats}}]}

    async def pooled(body: PoolingRequest) -> tuple[list[tuple[float, list[float]]], int]:
        """/classify's and /pooling's work: (reward, vector) per input, and the tokens read."""
        check_model(body.model)
        conversations = conversations_of(body)
        tokens = checked(conversations)
        return await rewards_of(conversations, tokens), tokens

    @app.post("/classify")
    @app.post("/v1/classify")
    async def classify(body: PoolingRequest):
        out, tokens = await pooled(body)
        # one label, as vLLM serves a num_labels=1 classifier: its activation is the sigmoid; a pairwise model's
        # group reward is a probability already
        activate = body.activated() and engine.kind == "scalar"
        data = [{"index": i, "label": "LABEL_0", "probs": [1 / (1 + math.exp(-r)) if activate else r],
                 "num_classes": 1} for i, (r, _) in enumerate(out)]
        return envelope("classify", data, tokens)

    @app.post("/pooling")
    async def pooling(body: PoolingRequest):
        out, tokens = await pooled(body)
        return envelope("pool", [{"index": i, "object": "pooling", "data": v} for i, (_, v) in enumerate(out)], tokens)

    @app.post("/get_reward")
    async def get_reward(body: RewardRequest):
        if body.prompts is not None and len(body.prompts) != len(body.query):
            raise ApiError(400, f"prompts: {len(body.prompts)} for {len(body.query)} queries")
        conversations = from_text(body.query, policy_formats, "query")
        tokens = checked(conversations)
        rewards = [r for r, _ in await rewards_of(conversations, tokens, body.prompts)]  # pairwise: by prompt
        return {"rewards": rewards, "scores": rewards, "extra_logs": {"rm_reward": rewards}}

    @app.post("/v1/group_rewards")
    async def group(body: GroupRequest):
        check_model(body.model)
        if (body.messages is None) == (body.prompt is None):
            raise ApiError(400, "give exactly one of `messages` (the turns before the answers) and `prompt`")
        context = [m.model_dump() for m in body.messages] if body.messages is not None else \
            [{"role": "user", "content": body.prompt}]
        if not context or context[-1]["role"] != "user":
            raise ApiError(400, "messages: the turns before the answers end with a user turn")
        conversations = [context + [{"role": "assistant", "content": r}] for r in body.responses]
        tokens = checked(conversations)
        if engine.kind == "scalar":
            rewards = [r for r, _ in await batcher.submit("score", conversations, tokens)]
            result = {"rewards": rewards, "best": max(range(len(rewards)), key=rewards.__getitem__),
                      "comparisons": 0}
        else:
            result = await _group(context, body.responses, body.mode, tokens)
        return {"object": "group_rewards", "model": name, "mode": body.mode if engine.kind != "scalar" else "scalar",
                **result}

    return BodyLimit(app, limits.max_body_bytes)
