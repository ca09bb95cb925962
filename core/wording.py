"""Small helpers for the words users read."""

from __future__ import annotations

# What a user reads when something failed that has no reason of its own to give.
ANSWER_FAILED = "Something went wrong while answering; please try again."
UPLOAD_FAILED = "Something went wrong while indexing {name}; it was not added."
COMMAND_FAILED = "Something went wrong while running that command; please try again."
VOTE_FAILED = "I couldn't record your vote; please try again."
ASK_OWNER_FAILED = "I couldn't ask the owner; please try again."


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "chunk")`` is "1 chunk", ``count(2, "chunk")`` "2 chunks"."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


SAVE_THREAD_REFUSED = (
    "Only an admin or the namespace's owner can save a thread; ask them to save this one."
)
SAVE_THREAD_FAILED = "Something went wrong while saving the thread; it was not added."
