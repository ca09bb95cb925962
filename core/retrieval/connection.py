"""The vector store's client: one for a Milvus server, or for the embedded file's server.

``call`` runs a function with the client in a worker thread, a few at a time (gRPC is
thread-safe); ``close`` waits for the calls in flight. On the embedded file, whose server lives
in whichever process owns the file (``core.retrieval.lite_server``), a call that fails because
that process went away reconnects, serving the file itself when it is free, and runs once more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.retrieval.lite_server import START_SECONDS, LiteServer

T = TypeVar("T")

log = logging.getLogger(__name__)

CONCURRENT_CALLS = 4
# for another process that holds the file to publish its server (it may be starting it)
ATTACH_SECONDS = START_SECONDS + 15.0


def is_server_uri(uri: str) -> bool:
    """Whether ``uri`` names a Milvus server (else it is an embedded store's file)."""
    return uri.startswith(("http://", "https://"))


class MilvusConnection:
    """``connect(uri)`` builds a ready client for a URI (run in a worker thread); ``uri`` is
    the store's: a server's, or the embedded file's path."""

    def __init__(
        self,
        uri: str,
        connect: Callable[[str], Any],
        *,
        concurrency: int = CONCURRENT_CALLS,
    ) -> None:
        self._uri = uri
        self._connect = connect
        self._concurrency = concurrency
        self._calls = asyncio.Semaphore(concurrency)
        self._reconnecting = asyncio.Lock()
        self._lite: LiteServer | None = None
        self._client: Any = None
        self._attached = ""  # the URI the client is connected to
        self._closed = False

    @property
    def client(self) -> Any:
        """The pymilvus client (None before ``open()``)."""
        return self._client

    async def open(self) -> None:
        if self._client is not None:
            return
        self._closed = False
        if not is_server_uri(self._uri):
            Path(self._uri).parent.mkdir(parents=True, exist_ok=True)
            self._lite = LiteServer(self._uri)
        try:
            self._client = await self._attach()
        except BaseException:
            await self._stop_serving()
            raise

    async def close(self) -> None:
        """Wait for the calls in flight, disconnect, and stop serving the file. Safe twice."""
        self._closed = True
        async with self._reconnecting:
            client, self._client = self._client, None
            try:
                if client is not None:
                    for _ in range(self._concurrency):
                        await self._calls.acquire()
                    try:
                        await asyncio.to_thread(client.close)
                    finally:
                        for _ in range(self._concurrency):
                            self._calls.release()
            finally:
                await self._stop_serving()

    async def call(self, fn: Callable[[Any], T]) -> T:
        client = self._require()
        try:
            async with self._calls:
                return await asyncio.to_thread(fn, client)
        except Exception:
            if not await self._reconnected(client):
                raise
        client = self._require()
        async with self._calls:
            return await asyncio.to_thread(fn, client)

    def _require(self) -> Any:
        if self._client is None:
            raise RuntimeError("MilvusVectorStore is not open; await open() first")
        return self._client

    async def _reconnected(self, failed: Any) -> bool:
        """After a failed call: whether a new client is ready because the file's server went
        away (False: the failure is the call's own)."""
        lite = self._lite
        if lite is None:
            return False
        async with self._reconnecting:
            if self._closed:
                return False
            if self._client is not failed:
                return self._client is not None  # another call reconnected meanwhile
            if await asyncio.to_thread(lite.serving, self._attached):
                return False
            log.info("milvus-lite: the server of %s went away; reconnecting", Path(self._uri).name)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(failed.close)
            self._client = await self._attach()
            return True

    async def _attach(self) -> Any:
        lite = self._lite
        if lite is None:
            return await asyncio.to_thread(self._connect, self._uri)
        deadline = time.monotonic() + ATTACH_SECONDS
        while True:
            uri = await asyncio.to_thread(lite.attach)
            if uri is not None:
                try:
                    client = await asyncio.to_thread(self._connect, uri)
                except Exception:
                    if await asyncio.to_thread(lite.serving, uri):
                        raise
                else:
                    self._attached = uri
                    return client
            if time.monotonic() > deadline:
                raise lite.busy_error()
            await asyncio.sleep(0.05)  # its owner is starting or stopping

    async def _stop_serving(self) -> None:
        lite, self._lite = self._lite, None
        if lite is not None:
            await asyncio.to_thread(lite.stop)
