"""Importing pymilvus and building its client, quietly.

pymilvus logs, with tracebacks, failures the store handles itself, which would reach the
terminal chat: ``import_pymilvus`` filters them. (It also parses MILVUS_URI when it is imported
and refuses anything but a server address: the bot imports it first, with a file path out of
its sight, in ``bot.process``.) ``open_client`` builds a ``MilvusClient`` for a server or for
an embedded store's loopback server.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

# The failure of a BM25 search of a collection that never held a row (milvus-lite).
EMPTY_BM25 = "NaN or Inf"
LITE_GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 2**31 - 1,  # never, in practice
    "grpc.keepalive_permit_without_calls": False,
}

_lock = threading.Lock()
_ready = False
_loopback: set[str] = set()  # host:port of the embedded stores' servers


def open_client(uri: str, *, embedded: bool, token: str | None = None) -> Any:
    """A ``MilvusClient`` of ``uri``: a Milvus server (with ``token``, if any), or with
    ``embedded`` the loopback server of an embedded store's file."""
    import_pymilvus()
    from pymilvus import MilvusClient

    kwargs: dict[str, Any] = {"uri": uri}
    if token and not embedded:
        kwargs["token"] = token
    if embedded:
        # pymilvus pings every 10 s even with no call in flight; milvus-lite's gRPC server
        # allows that rarely and answers with a GOAWAY ("too_many_pings") that gRPC prints
        # to stderr, into the terminal chat. A loopback channel needs no keepalive at all.
        kwargs["grpc_options"] = LITE_GRPC_OPTIONS
        # its own channel: after a hand-over no call may reuse one to a stopped server
        kwargs["dedicated"] = True
        _loopback.add(uri.removeprefix("http://"))
    return MilvusClient(**kwargs)


def import_pymilvus() -> None:
    """Import pymilvus and silence its logs of the failures the store handles."""
    global _ready
    with _lock:
        if _ready:
            return
        import pymilvus  # noqa: F401

        logging.getLogger("pymilvus.decorators").addFilter(_QuietEmptyBm25())
        for name in ("pymilvus.decorators", "pymilvus.client.connection_manager"):
            logging.getLogger(name).addFilter(_QuietHandover())
        logging.getLogger("pymilvus.orm.iterator").addFilter(_QuietIteratorTs())
        _ready = True


class _QuietEmptyBm25(logging.Filter):
    """Drops pymilvus' error log (with its traceback) of the empty-collection BM25 failure,
    which the store handles."""

    def filter(self, record: logging.LogRecord) -> bool:
        return EMPTY_BM25 not in record.getMessage()


class _QuietHandover(logging.Filter):
    """Drops pymilvus' logs (with their tracebacks) of a failure to reach an embedded store's
    server: its owner went away, and the store reconnects (``core.retrieval.connection``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not any(address in text for address in _loopback)


class _QuietIteratorTs(logging.Filter):
    """Drops pymilvus' warning that milvus-lite gives iterators no server timestamp (the
    client's is used, which is right for one server); it would print into the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "failed to get mvccTs" not in record.getMessage()
