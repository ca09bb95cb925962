"""Queries first: embedding a document's chunks yields to the questions waiting to be embedded.

One model embeds both, one call at a time. Its invariants:

- A question waits only for other questions and for at most one document step: a step starts
  only while no question is queued or being embedded.
- One document step runs at a time, whatever the number of uploads, so document work never
  holds more than one of the executor threads that questions and the vector store need too.
- The embedder cuts a large batch into small steps, so a step is short.
- Where the model runs in threads of its own (int8 ONNX), document steps run on threads at a
  lower CPU priority (``lower_thread_priority``), and questions do not wait for a step: on a
  small machine the event loop, the questions and the vector store get the cores first.
- While people are asking (a question in the last ``ASKING_SECONDS``), a document step leaves
  one core to them (``QueriesFirst.spare_core``): a lower priority alone still lets a step on
  every core delay each hop of a question (loop, model, vector store) by a scheduler slice.

State is kept per event loop: asyncio futures belong to one loop, and a loop that closed
mid-step must not leave the next one waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

BACKGROUND_NICE = 10
ASKING_SECONDS = 2.0  # a question this recent means people are asking: document steps narrow


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> None:
    """Lower the calling thread's CPU priority (Linux, where a thread has its own nice value;
    elsewhere it would lower the whole process, so nothing happens). A thread pool initializer:
    a thread never gets its priority back, which needs privileges."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


@dataclass
class _State:
    queries: int = 0  # queued or being embedded
    asked: float = float("-inf")  # time.monotonic() of the latest question
    stepping: bool = False  # a document step is running
    waiting: list[asyncio.Future[None]] = field(default_factory=list)


class QueriesFirst:
    """``async with gate.query():`` around a question's embedding; ``async with
    gate.document():`` around each step of a document's."""

    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _State] = (
            weakref.WeakKeyDictionary()
        )

    def _state(self) -> _State:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            state = self._states[loop] = _State()
        return state

    @property
    def queries(self) -> int:
        """Questions queued or being embedded on this event loop."""
        return self._state().queries

    def spare_core(self) -> bool:
        """Whether document steps should leave a core free: a question came in the last
        ``ASKING_SECONDS`` on this event loop."""
        return time.monotonic() - self._state().asked < ASKING_SECONDS

    @contextlib.asynccontextmanager
    async def query(self) -> AsyncIterator[None]:
        state = self._state()
        state.queries += 1
        state.asked = time.monotonic()
        try:
            yield
        finally:
            state.queries -= 1
            _wake(state)

    @contextlib.asynccontextmanager
    async def document(self) -> AsyncIterator[None]:
        state = self._state()
        while state.queries or state.stepping:
            turn = asyncio.get_running_loop().create_future()
            state.waiting.append(turn)
            await turn
        state.stepping = True
        try:
            yield
        finally:
            state.stepping = False
            _wake(state)


class Activity:
    """How many of some work are running, shared between the service that does it and those
    that give way to it: ``with activity.running():`` around each; true while any runs.
    Indexing uses it: while a document's chunks are embedded, questions leave the sentences not
    stored yet to it instead of embedding them (``Retriever.sentence_similarities``)."""

    def __init__(self) -> None:
        self._running = 0

    def __bool__(self) -> bool:
        return self._running > 0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1


def _wake(state: _State) -> None:
    """Let waiting document steps look again, once no question is left."""
    if state.queries:
        return
    waiting, state.waiting = state.waiting, []
    for turn in waiting:
        if not turn.done():
            turn.set_result(None)
