"""Which processes hold an embedded store's file, read from /proc (Linux)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path


def openers(db: Path) -> set[int]:
    """The live processes with ``db`` itself open."""
    target = str(db.absolute())
    found = set()
    for pid in _pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.add(pid)
                    break
            except OSError:
                continue
    return {pid for pid in found if alive(pid)}


def servers(db: Path) -> set[int]:
    """The live milvus-lite processes started on ``db``."""
    target = str(db.absolute())
    found = set()
    for pid in _pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"/milvus") and argv[1].decode() == target:
            found.add(pid)
    return {pid for pid in found if alive(pid)}


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def address_pid(db: Path) -> int | None:
    """The pid the store's address file names (None without one)."""
    try:
        return int(db.with_name(db.name + ".address").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


async def until_gone(pids: set[int], *, seconds: float = 60.0) -> None:
    """Wait for every one of ``pids`` to end (fails after ``seconds``: a hang, not a timing)."""
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            raise AssertionError(f"still running: {sorted(p for p in pids if alive(p))}")
        await asyncio.sleep(0.05)


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]
