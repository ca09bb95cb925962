"""Coalescing: requests that arrive while a call is in flight share the next call.

Used where one call for many requests costs little more than a call for one: the query
embedder (one model batch for every question waiting), the vector store's search (one Milvus
search with many query vectors for every question waiting on the same filter), and the
database's group commit and coalesced reads (``core.db.access``, which the stores use). Nothing
waits on purpose: the first request goes out at once, and what arrives during that call goes
out together as soon as it returns, so a lone request pays nothing and a burst pays one call per
batch instead of one per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - the item type, beside K(ey) and O(utput)
O = TypeVar("O")  # noqa: E741


@dataclass(frozen=True, slots=True)
class Failed:
    """What ``run`` returns in place of one item's result when only that item failed."""

    error: Exception


class Coalescer(Generic[K, I, O]):
    """``submit(key, item)`` resolves to ``run(key, items)[i]`` for its item; requests share a
    ``run`` call only with requests of the same key, at most ``max_batch`` at a time, one call
    per key in flight. An error raised by ``run`` goes to every request of that call, a
    ``Failed`` result to its own request only; none hangs."""

    def __init__(
        self, run: Callable[[K, list[I]], Awaitable[Sequence[O | Failed]]], *, max_batch: int
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self._max_batch = max_batch
        self._pending: dict[K, list[tuple[I, asyncio.Future[O]]]] = {}
        self._drains: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: I) -> O:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[O] = loop.create_future()
        queue = self._pending.setdefault(key, [])
        queue.append((item, future))
        drain = self._drains.get(key)
        if drain is None or drain.done() or drain.get_loop() is not loop:
            # A drain of another (closed) event loop can never serve this one's futures.
            self._pending[key] = [(i, f) for i, f in queue if f.get_loop() is loop]
            self._drains[key] = loop.create_task(self._drain(key))
        # Shielded: a caller that gives up does not cancel the call the others share.
        return await asyncio.shield(future)

    async def _drain(self, key: K) -> None:
        me = asyncio.current_task()
        try:
            while queue := self._pending.get(key):
                batch = queue[: self._max_batch]
                if len(queue) > self._max_batch:
                    self._pending[key] = queue[self._max_batch :]
                else:
                    del self._pending[key]
                try:
                    results = await self._run(key, [item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:  # cancelled (the loop is closing): nobody is left waiting
                    for _, future in batch + self._pending.pop(key, []):
                        future.cancel()
                    raise
                if len(results) != len(batch):
                    error = RuntimeError(f"batch call returned {len(results)} for {len(batch)}")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, Failed):
                        future.set_exception(result.error)
                    else:
                        future.set_result(result)
        finally:
            if self._drains.get(key) is me:
                del self._drains[key]
