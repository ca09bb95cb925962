"""Filter expressions of the Milvus store, built only from parsed UUIDs and their INT64 keys.

Searches filter on INT64 keys (``workspace_key``, ``namespace_key``, ``document_key``: 64 bits
of a hash of the UUID) instead of the VARCHAR ids, which milvus-lite compares row by row (~8 ms
per leg at 100k chunks, ``bench/retrieval_latency.py``). A hash collision cannot leak
across tenants: the retriever keeps only chunks whose SQL row belongs to the asking workspace.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence

ID_BATCH = 1000  # ids per "in [...]" expression


def canonical_uuid(value: str, what: str) -> str:
    """``value`` as a canonical UUID string; ``ValueError`` naming ``what`` when it is not one."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"invalid {what}: not a UUID") from None


def id_key(canonical: str) -> int:
    """The INT64 search key of a UUID: 64 bits of its BLAKE2b hash, signed."""
    digest = hashlib.blake2b(uuid.UUID(canonical).bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def tenant_filter(
    workspace_id: str | Sequence[str],
    namespace_ids: Sequence[str],
    document_ids: Sequence[str] | None = None,
) -> str | None:
    """The boolean expression of one search, or None when it can match nothing.

    Every id is parsed as a UUID and turned into its integer key, so no caller-supplied
    character ever reaches the expression.
    """
    if not namespace_ids or (document_ids is not None and not document_ids):
        return None
    workspaces = [workspace_id] if isinstance(workspace_id, str) else list(workspace_id)
    if not workspaces:
        return None
    ws = sorted({id_key(canonical_uuid(w, "workspace id")) for w in workspaces})
    ns = sorted({id_key(canonical_uuid(n, "namespace id")) for n in namespace_ids})
    # The most selective term first, and "==" for one value: lite evaluates left to right,
    # and "k == v" measured cheaper than "k in [v]" (bench/retrieval_latency.py).
    expr = _key_term("namespace_key", ns) + " and " + _key_term("workspace_key", ws)
    if document_ids is not None:
        docs = sorted({id_key(canonical_uuid(d, "document id")) for d in document_ids})
        expr = _key_term("document_key", docs) + " and " + expr
    return expr


def id_equals(field: str, value: str, what: str) -> str:
    """``field == "<uuid>"``, with ``value`` parsed as a UUID first."""
    return f'{field} == "{canonical_uuid(value, what)}"'


def id_in(field: str, ids: Iterable[str]) -> str:
    """``field in ["<uuid>", ...]`` for ids already made canonical."""
    return f"{field} in [" + ", ".join(f'"{i}"' for i in ids) + "]"


def batches(ids: list[str]) -> list[list[str]]:
    """``ids`` in runs of at most ``ID_BATCH``, one expression or call each."""
    return [ids[i : i + ID_BATCH] for i in range(0, len(ids), ID_BATCH)]


def _key_term(field: str, keys: list[int]) -> str:
    return f"{field} == {keys[0]}" if len(keys) == 1 else f"{field} in {keys}"
