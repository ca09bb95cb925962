"""Port of generation: a chat model that streams, and the values generation works on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.enums import MessageRole


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: MessageRole
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int


@dataclass(frozen=True, slots=True)
class Source:
    """One retrieved chunk as an answer numbers it: ``n`` is its [n] marker."""

    n: int
    chunk_id: str
    document_id: str
    title: str
    text: str
    source_url: str | None
    start: int | None
    end: int | None
    score: float


OnDelta = Callable[[str], Awaitable[None]]


class LLM(Protocol):
    """A chat-completion model. Raises ``core.errors.LLMUnavailable`` on any failure."""

    @property
    def model(self) -> str: ...

    @property
    def timeout(self) -> float:
        """Seconds one question may spend on the model: its calls and their retries together."""
        ...

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        on_delta: OnDelta | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.1,
        deadline: float | None = None,
    ) -> Completion:
        """Generate; with ``on_delta`` stream text deltas as they arrive.

        ``deadline`` (a ``time.monotonic()`` instant; default ``timeout`` from now) ends the
        call, retries and stream included, with ``LLMUnavailable``; past it, a call fails at
        once."""
        ...
