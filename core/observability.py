"""What core reports about itself: a metrics port and the log context of the current work.

Core calls :class:`Metrics`; ``bot/`` supplies a Prometheus implementation. The log context
(event id, workspace, session) rides a ContextVar so every log line of one answer carries it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from core.types import Answer

_LOG_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "lorekeeper_log_context", default=None
)


def log_context() -> dict[str, str]:
    """The fields of the work in progress (empty outside of one)."""
    return dict(_LOG_CONTEXT.get() or {})


@contextmanager
def bind_log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to the log context for the duration of a block (nests)."""
    merged = {**log_context(), **{k: v for k, v in fields.items() if v is not None}}
    token = _LOG_CONTEXT.set(merged)
    try:
        yield
    finally:
        _LOG_CONTEXT.reset(token)


class Metrics(Protocol):
    def answered(self, answer: Answer, seconds: float) -> None: ...

    def ingested(self, *, ok: bool, chunks: int, seconds: float) -> None: ...

    def error(self, kind: str) -> None: ...

    def job_run(self, job: str, *, ok: bool, seconds: float) -> None: ...


class NullMetrics:
    """Counts nothing (tests, CLI one-shots)."""

    def answered(self, answer: Answer, seconds: float) -> None:
        return None

    def ingested(self, *, ok: bool, chunks: int, seconds: float) -> None:
        return None

    def error(self, kind: str) -> None:
        return None

    def job_run(self, job: str, *, ok: bool, seconds: float) -> None:
        return None
