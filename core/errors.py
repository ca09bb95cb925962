"""The error hierarchy of core. Adapters map these, once each, to the words a user sees.

Every error carries ``user_message``: a sentence safe to show in a chat (no exception text,
no paths beyond a file's own name, no secrets).
"""

from __future__ import annotations


class LorekeeperError(Exception):
    """Base class: ``user_message`` is what a person may read."""

    def __init__(self, user_message: str, *, reason: str | None = None) -> None:
        super().__init__(reason or user_message)
        self.user_message = user_message
        self.reason = reason or user_message


class ConfigError(LorekeeperError):
    """A setting is missing or invalid."""


class UnsupportedFile(LorekeeperError):
    """A file cannot be indexed: wrong type, corrupt, encrypted, empty or too large."""

    def __init__(self, filename: str, why: str) -> None:
        super().__init__(f"I can't index {filename}: {why}.")
        self.filename = filename
        self.why = why


class NamespaceNotFound(LorekeeperError):
    def __init__(self, name: str) -> None:
        super().__init__(f"There is no namespace called '{name}'.")
        self.name = name


class DocumentNotFound(LorekeeperError):
    def __init__(self, document_id: str) -> None:
        super().__init__(f"There is no document with id {document_id}.")


class NamespaceExists(LorekeeperError):
    def __init__(self, name: str) -> None:
        super().__init__(f"A namespace called '{name}' already exists.")


class NotAllowed(LorekeeperError):
    """The caller lacks the role an action needs."""


class QuotaExceeded(LorekeeperError):
    """A daily token limit has been reached."""


class RateLimited(LorekeeperError):
    """A person asked more questions than the rate limit allows; ``retry_after`` in seconds."""

    def __init__(self, user_message: str, *, retry_after: float) -> None:
        super().__init__(user_message)
        self.retry_after = retry_after


class NotEnabled(LorekeeperError):
    """The workspace does not belong to the organisation this install serves."""

    def __init__(self) -> None:
        super().__init__(
            "Lorekeeper is not enabled here. It answers only in the workspaces of the "
            "organisation that runs it; ask its admins if this one should be added.",
            reason="workspace not in the organisation",
        )


class StoreLocked(LorekeeperError):
    """Another process holds the embedded vector store."""


class LLMUnavailable(LorekeeperError):
    """The language model could not be reached or refused the call."""
