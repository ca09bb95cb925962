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

A version belongs to its uploader: only they, or an admin (the CLI counts as one), replace it.
Another member's file of the same name becomes a separate document beside it.

When one uploader has several versions indexed, their newest survives: the one whose ingestion
started last (``created_at``, then the time-ordered id). Every ingestion applies this rule after
its own document is indexed (``settle``), so versions racing on one or several processes end
with exactly one per uploader.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.db.records import DocumentRecord


@dataclass(frozen=True, slots=True)
class Versions:
    """What settling a new version decided: the older versions it replaces, the newer version
    (same uploader) that replaces it, how many versions of other people stay beside it, and
    the documents to delete for that."""

    replaced: tuple[uuid.UUID, ...] = ()
    superseded_by: uuid.UUID | None = None
    others_kept: int = 0
    delete: tuple[uuid.UUID, ...] = ()


def settle(
    document: DocumentRecord,
    versions: Sequence[DocumentRecord],
    may_replace: Callable[[DocumentRecord], bool] | None = None,
) -> Versions:
    """The version rule for ``document``, just indexed, among the indexed ``versions`` of its
    identity. ``may_replace`` says whose older versions its uploader may replace (default:
    only their own)."""
    others = [v for v in versions if v.id != document.id]
    mine = [v for v in others if v.uploaded_by == document.uploaded_by]
    newer = [v for v in mine if _order(v) > _order(document)]
    if newer:
        return Versions(superseded_by=newest(newer).id, delete=(document.id,))
    allowed = may_replace or (lambda v: v.uploaded_by == document.uploaded_by)
    older = [v.id for v in others if _order(v) < _order(document) and (v in mine or allowed(v))]
    return Versions(
        replaced=tuple(older), others_kept=len(others) - len(older), delete=tuple(older)
    )


def _order(document: DocumentRecord) -> tuple[object, uuid.UUID]:
    return (document.created_at, document.id)


def identity_hash(filename: str, identity: str | None = None) -> str:
    """What the ``documents.identity_hash`` column holds for a file."""
    return hashlib.sha256((identity or filename[:512]).encode()).hexdigest()


def newest(versions: Sequence[DocumentRecord]) -> DocumentRecord:
    """The version that survives among one uploader's; the others are replaced by it."""
    return max(versions, key=_order)
