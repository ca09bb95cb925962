"""Small helpers for the words users read."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "chunk")`` is "1 chunk", ``count(2, "chunk")`` "2 chunks"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
