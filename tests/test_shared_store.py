"""The embedded store shared by processes: one owner serves the file over loopback, the others
connect; the owner leaving or dying hands the file over and leaves no milvus-lite behind; an
address file is trusted only from the current owner."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from core.errors import StoreLocked
from core.retrieval import connection
from core.retrieval.base import VectorRecord
from core.retrieval.milvus import MilvusVectorStore
from tests.store_processes import address_pid, openers, parent, servers, until_gone

ROOT = Path(__file__).resolve().parents[1]
DIM = 4

# Opens the store (the owner when it is first), adds one chunk, says READY, and closes the
# store when a line (or EOF) arrives on stdin or on Ctrl-C; SIGTERM and SIGKILL end it as
# they end any command.
HOLDER = """
import asyncio, sys
from core.retrieval.base import VectorRecord
from core.retrieval.milvus import MilvusVectorStore

async def main():
    store = MilvusVectorStore(sys.argv[1], dimension=4)
    await store.open()
    try:
        ids = [sys.argv[2], sys.argv[3], sys.argv[3], sys.argv[3]]
        await store.upsert([VectorRecord(*ids, "from the holder", [1.0, 0.0, 0.0, 0.0])])
        print("READY", flush=True)
        leave = asyncio.Event()
        asyncio.get_running_loop().add_reader(sys.stdin.fileno(), leave.set)
        await leave.wait()
    finally:
        await store.close()

asyncio.run(main())
"""


# Holds the store's lock as an owner does, but serves nothing.
LOCKER = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("LOCKED", flush=True)
signal.pause()
"""


def _id() -> str:
    return str(uuid.uuid4())


def _record(chunk: str) -> VectorRecord:
    return VectorRecord(chunk, _id(), _id(), _id(), "from the test", [0.0, 1.0, 0.0, 0.0])


@asynccontextmanager
async def holder(db: Path, chunk: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """A separate process holding the store (in a process group of its own, as a terminal
    command is), ready once it has written ``chunk``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(db), chunk, _id(),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)  # type: ignore[union-attr]
        assert line == b"READY\n", line
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_processes_share_the_file_and_the_owner_leaving_hands_it_over(
    tmp_path: Path,
) -> None:
    db = tmp_path / "shared.db"
    theirs, ours = _id(), _id()
    async with holder(db, theirs) as owner:
        store = MilvusVectorStore(str(db), dimension=DIM)
        await store.open()
        try:
            assert address_pid(db) == owner.pid  # served by the process that came first
            await store.upsert([_record(ours)])
            assert await store.chunk_ids() == {theirs, ours}
            [server] = servers(db)
            assert parent(server) == owner.pid
            assert openers(db) == {server}  # the file itself: only its server has it open

            owner.stdin.write(b"leave\n")  # type: ignore[union-attr]
            assert await asyncio.wait_for(owner.wait(), timeout=60) == 0
            await until_gone({server})
            # the next call finds the server gone, takes the file over and serves it
            assert await store.chunk_ids() == {theirs, ours}
            assert address_pid(db) == os.getpid()
            [mine] = servers(db)
            assert parent(mine) == os.getpid() and openers(db) == {mine}
        finally:
            await store.close()
    assert servers(db) == set() and address_pid(db) is None


@pytest.mark.parametrize(
    "sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name
)
async def test_an_owner_ended_by_a_signal_leaves_no_milvus_lite(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGKILL, SIGTERM (a command's default: no clean-up runs) and Ctrl-C (to the command's
    process group, as a terminal sends it) all take the owner's server with it; a connected
    process then serves the file itself."""
    db = tmp_path / "killed.db"
    chunk = _id()
    async with holder(db, chunk) as owner:
        store = MilvusVectorStore(str(db), dimension=DIM)
        await store.open()
        try:
            [server] = servers(db)
            os.killpg(owner.pid, sig)
            await owner.wait()
            await until_gone({server})
            assert await store.chunk_ids() == {chunk}
            assert address_pid(db) == os.getpid()
        finally:
            await store.close()
    assert servers(db) == set()


async def test_a_stale_address_file_is_not_trusted(tmp_path: Path, monkeypatch) -> None:
    """An address left behind by an owner that died (no lock held), or naming another process
    than the one that holds the lock, is never connected to."""
    db = tmp_path / "stale.db"
    address = db.with_name(db.name + ".address")
    with socket.socket() as decoy:
        decoy.bind(("127.0.0.1", 0))
        decoy.listen()
        decoy.setblocking(False)
        port = decoy.getsockname()[1]
        address.write_text(f"{os.getppid()} 127.0.0.1:{port}\n")
        store = MilvusVectorStore(str(db), dimension=DIM)
        await store.open()
        try:
            assert address_pid(db) == os.getpid()
            assert f":{port}" not in address.read_text()
        finally:
            await store.close()

        # a live holder of the lock that never published this address
        locker = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, str(db.with_name(db.name + ".lock")),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert await locker.stdout.readline() == b"LOCKED\n"  # type: ignore[union-attr]
            address.write_text(f"{os.getppid()} 127.0.0.1:{port}\n")
            monkeypatch.setattr(connection, "ATTACH_SECONDS", 0.5)
            with pytest.raises(StoreLocked) as refused:
                await MilvusVectorStore(str(db), dimension=DIM).open()
            assert f"pid {locker.pid}" in refused.value.reason
        finally:
            locker.kill()
            await locker.wait()
        with pytest.raises(BlockingIOError):
            decoy.accept()  # nobody ever connected to the stale address
