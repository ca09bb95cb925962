"""Versions of a document: a changed file with the same identity replaces the older one.

A document's identity within its namespace is the ``identity`` its ingester names, else its
filename:

- ``lorekeeper ingest`` names the file's resolved ``file:`` URL, so ``docs/a/README.md`` and
  ``docs/b/README.md`` stay two documents and an edited file replaces only its own old version
  (the same file ingested from another folder or machine is another document);
- a file dropped into a chat (Slack, Discord, the terminal chat's ``/upload``) is identified by
  its filename: the link a platform gives an upload changes with every upload, so it can't
  tell a new version from a new file. Dropping ``handbook.pdf`` again replaces the namespace's
  earlier chat-uploaded ``handbook.pdf``, not a ``handbook.pdf`` indexed by the CLI.

Names are compared exactly (case and extension included), and only within one namespace of one
workspace. Identical bytes are not a new version: they stay a duplicate of what is stored.

When several versions are indexed, the newest survives: the one whose ingestion started last
(``created_at``, then the time-ordered id). Every ingestion applies this rule after its own
document is indexed, so versions racing on one or several processes end with exactly one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from core.db.records import DocumentRecord


def identity_hash(filename: str, identity: str | None = None) -> str:
    """What the ``documents.identity_hash`` column holds for a file."""
    return hashlib.sha256((identity or filename[:512]).encode()).hexdigest()


def newest(versions: Sequence[DocumentRecord]) -> DocumentRecord:
    """The version that survives; the others are replaced by it."""
    return max(versions, key=lambda d: (d.created_at, d.id))
