"""Dynamic batching: concurrent requests share the model's forwards.

Each request puts its items (conversations to score, or pairs to compare) on one queue. A single worker takes the
first waiting request, then keeps taking more for up to ``max_wait`` seconds or until ``max_batch_tokens`` tokens are
gathered, and runs each kind of work in one call of the scorer on a worker thread (the event loop keeps accepting
requests meanwhile). One worker means the model is only ever used by one thread. The scorers batch by length and
pool at each row's last real token with position ids from the mask, so a reward does not depend on which requests
shared its batch (tests/unit/serve checks that to 1e-5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)


class Busy(Exception):
    """The queue is full: the client should retry later (HTTP 429)."""


@dataclass
class _Job:
    op: str
    items: list
    tokens: int
    future: asyncio.Future
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(self, ops: dict[str, Callable[[list], list]], max_batch_tokens: int = 16384,
                 max_wait: float = 0.005, max_queued_items: int = 4096):
        self.ops, self.max_batch_tokens, self.max_wait = ops, max_batch_tokens, max_wait
        self.max_queued_items, self.queued_items = max_queued_items, 0
        self.queue: asyncio.Queue[_Job] = asyncio.Queue()
        self.stats = {"batches": 0, "items": 0, "requests": 0, "largest_batch": 0}
        self._worker: asyncio.Task | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass

    async def submit(self, op: str, items: list, tokens: int) -> list:
        """The op's results for ``items``, in order; ``Busy`` when the queue holds too many items already."""
        if not items:
            return []
        if self.queued_items + len(items) > self.max_queued_items:
            raise Busy(f"{self.queued_items} items are waiting (limit {self.max_queued_items})")
        self.queued_items += len(items)
        job = _Job(op, items, tokens, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _gather(self) -> list[_Job]:
        jobs = [await self.queue.get()]
        tokens, deadline = jobs[0].tokens, time.monotonic() + self.max_wait
        while tokens < self.max_batch_tokens:
            remaining = deadline - time.monotonic()
            try:
                job = self.queue.get_nowait() if remaining <= 0 else await asyncio.wait_for(self.queue.get(), remaining)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            jobs.append(job)
            tokens += job.tokens
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._gather()
            for op in dict.fromkeys(j.op for j in jobs):
                group = [j for j in jobs if j.op == op]
                items: list[Any] = [item for j in group for item in j.items]
                try:
                    results = await asyncio.to_thread(self.ops[op], items)
                except Exception as exc:  # handed to each waiting request, which answers for it
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(exc)
                else:
                    start = 0
                    for j in group:
                        if not j.future.done():
                            j.future.set_result(results[start:start + len(j.items)])
                        start += len(j.items)
                self.stats["batches"] += 1
                self.stats["items"] += len(items)
                self.stats["requests"] += len(group)
                self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
                self.queued_items -= len(items)
