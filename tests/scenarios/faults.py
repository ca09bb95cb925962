"""Seams the scenarios reach through the running core, the same on every driver.

Core's services share one :class:`~core.retrieval.retriever.Retriever` and one
:class:`~core.ingestion.service.IngestionService` (``bot.container.build``), so replacing a
method on the container's instance for the length of a ``with`` reaches every answer and upload
the bot runs, whichever platform it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

from bot.container import Container
from core.conversation import ConversationPipeline

# What the failures below say; no user may ever read it.
INTERNAL = "vector index 0xdeadbeef exploded"


@contextlib.contextmanager
def _replaced(target: object, name: str, method: Any) -> Iterator[None]:
    setattr(target, name, method)
    try:
        yield
    finally:
        delattr(target, name)  # the class's own method shows through again


def answering_fails(container: Container) -> contextlib.AbstractContextManager[None]:
    """Every search for an answer raises a RuntimeError (a bug deep in core)."""

    async def search(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(INTERNAL)

    return _replaced(container.retriever, "search", search)


def indexing_fails(container: Container) -> contextlib.AbstractContextManager[None]:
    """Every file's indexing raises a RuntimeError once it is downloaded."""

    async def ingest(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(INTERNAL)

    return _replaced(container.ingestion, "ingest", ingest)


class SearchProbe:
    """Counts the searches running at once (``peak``).

    The first search holds until ``expected`` messages are in the pipeline (handled or waiting
    for a slot), up to ``within`` seconds: a pipeline that let more than one answer run would
    show it here, because the others would search while the first one holds. With a working
    cap the others wait for their slot, so the peak stays at the cap whatever the timing.
    """

    def __init__(
        self,
        container: Container,
        pipeline: ConversationPipeline,
        *,
        expected: int,
        within: float = 30.0,
    ) -> None:
        self._container = container
        self._pipeline = pipeline
        self._expected = expected
        self._within = within
        self.calls = 0
        self.running = 0
        self.peak = 0
        self.all_arrived = False

    async def _search(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.calls == 1:
                await self._others()
            return await type(self._container.retriever).search(
                self._container.retriever, *args, **kwargs
            )
        finally:
            self.running -= 1

    async def _others(self) -> None:
        deadline = time.monotonic() + self._within
        while self._pipeline.in_flight < self._expected:
            if time.monotonic() > deadline:
                return  # all_arrived stays False: the scenario says so
            await asyncio.sleep(0.01)
        self.all_arrived = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[SearchProbe]:
        with _replaced(self._container.retriever, "search", self._search):
            yield self
