"""The database access layer: one engine, its connections and sessions, and the two pieces of
machinery that make a burst of questions cheap, behind plain calls.

Every store takes a ``Database`` and uses it in one style:

- ``read()``: a Core connection for reads, no transaction of its own to commit.
- ``transaction()``: a Core connection in a transaction, committed when the block ends and
  rolled back when it raises. Each store method that writes owns one.
- ``group_commit(write)``: writes that may share a transaction with other callers' writes.
- ``coalesced(read)``: reads that may share a statement with other callers' reads.
- ``session()``: an ORM session, for the jobs and reports that load ORM objects; stores don't.

Invariants, for everything built on this layer:

1. Stores run Core statements and hand back plain records (``core.db.records``), never live ORM
   rows. An ORM session costs ~0.14 ms more CPU per statement on the event loop (set-up, ORM
   execution path, close), for rows that need no ORM. Statements a question runs are built
   once (``core.db.statements`` or module constants): building one costs more CPU than
   executing it on SQLite.
2. Group commit (``GroupCommit``): a write that arrives while a batch's transaction runs joins
   the next batch (``max_batch`` at most); a lone write goes out at once, nothing waits on
   purpose. A batch's items are written in arrival order in one transaction and each gets its
   own result. When that transaction fails, every item is written again alone in a
   transaction of its own, so an item that fails fails alone and only its caller sees the
   error (PostgreSQL aborts a whole transaction at its first error). An item's write must
   therefore be safe to run again after a rolled-back attempt.
3. Coalesced reads (``CoalescedRead``): requests with the same key that arrive while a read
   runs share the next read, on one connection; a failure reaches every request of that
   read, and no request hangs.
4. A caller that stops waiting (cancelled) does not cancel the write or read it shares.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from core.batching import Coalescer, Failed

I = TypeVar("I")  # noqa: E741 - an item (one caller's write or read request)
O = TypeVar("O")  # noqa: E741 - its result
K = TypeVar("K", bound=Hashable)

WRITE_BATCH = 64  # writes that share one transaction at most

# write(conn, items) -> one result per item, in order, inside the transaction it is given
Write = Callable[[AsyncConnection, Sequence[I]], Awaitable[Sequence[O]]]
# read(conn, key, items) -> one result per item, in order
Read = Callable[[AsyncConnection, K, Sequence[I]], Awaitable[Sequence[O]]]


class Database:
    """The engine and everything opened from it; ``dispose()`` closes its connections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def insert_returning(self) -> bool:
        """Whether ``INSERT ... RETURNING`` is available."""
        return bool(self.engine.dialect.insert_returning)

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection for reads."""
        return self.engine.connect()

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A Core connection in a transaction: committed at the end, rolled back on error."""
        return self.engine.begin()

    def session(self) -> AsyncSession:
        """An ORM session (``expire_on_commit=False``); ``async with db.session() as s``."""
        return self._sessions()

    def group_commit(
        self, write: Write[I, O], *, max_batch: int = WRITE_BATCH
    ) -> GroupCommit[I, O]:
        return GroupCommit(self, write, max_batch=max_batch)

    def coalesced(self, read: Read[K, I, O], *, max_batch: int) -> CoalescedRead[K, I, O]:
        return CoalescedRead(self, read, max_batch=max_batch)

    async def dispose(self) -> None:
        await self.engine.dispose()


class GroupCommit(Generic[I, O]):
    """``submit(item)`` resolves to the item's result once its transaction committed, or raises
    the item's own error (invariant 2 of this module)."""

    def __init__(self, database: Database, write: Write[I, O], *, max_batch: int) -> None:
        self._db = database
        self._write = write
        self._batches: Coalescer[None, I, O] = Coalescer(self._commit, max_batch=max_batch)

    async def submit(self, item: I) -> O:
        return await self._batches.submit(None, item)

    async def _commit(self, _key: None, items: list[I]) -> list[O | Failed]:
        try:
            async with self._db.transaction() as conn:
                return list(await self._write(conn, items))
        except Exception as exc:
            if len(items) == 1:
                return [Failed(exc)]
        return [await self._alone(item) for item in items]

    async def _alone(self, item: I) -> O | Failed:
        try:
            async with self._db.transaction() as conn:
                (result,) = await self._write(conn, [item])
        except Exception as exc:
            return Failed(exc)
        return result


class CoalescedRead(Generic[K, I, O]):
    """``fetch(key, item)`` resolves to the item's result of the next read for ``key``
    (invariant 3 of this module)."""

    def __init__(self, database: Database, read: Read[K, I, O], *, max_batch: int) -> None:
        self._db = database
        self._read = read
        self._batches: Coalescer[K, I, O] = Coalescer(self._run, max_batch=max_batch)

    async def fetch(self, key: K, item: I) -> O:
        return await self._batches.submit(key, item)

    async def _run(self, key: K, items: list[I]) -> Sequence[O]:
        async with self._db.read() as conn:
            return await self._read(conn, key, items)
