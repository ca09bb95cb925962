"""Sources as retrieval hands them to the offline answerer, for its unit tests."""

from __future__ import annotations

import uuid

from core.generation.base import Source


def make(*texts: str) -> list[Source]:
    """One source per text, numbered from 1, in retrieval order (scores falling)."""
    return [
        Source(i, str(uuid.uuid4()), str(uuid.uuid4()), f"Doc {i}", t, None, 0, len(t), 1 / i)
        for i, t in enumerate(texts, start=1)
    ]
