"""One process per embedded vector store file: milvus-lite corrupts a file two processes open."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from core.errors import StoreLocked


class StoreLock:
    """An exclusive, non-blocking ``flock`` on ``<db path>.lock`` holding the owner's pid.

    The OS drops the lock when the process dies, so a crash never leaves the store locked.
    """

    def __init__(self, db_path: str | Path) -> None:
        self._db_path = Path(db_path)
        self._lock_path = self._db_path.with_name(self._db_path.name + ".lock")
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self._lock_path

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``StoreLocked`` naming the process that holds it."""
        if self._fd is not None:
            return
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise self._locked_error(holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; its content no longer matters)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def _locked_error(self, holder: int | None) -> StoreLocked:
        who = f" (pid {holder})" if holder is not None else ""
        name = self._db_path.name
        reason = (
            f"The embedded vector store {self._db_path} is in use by another Lorekeeper "
            f"process{who}. Stop it first, or use a Milvus server (MILVUS_URI=http://...) "
            "for several processes."
        )
        user = (
            f"The vector store {name} is in use by another Lorekeeper process{who}. "
            "Stop it first, or use a Milvus server for several processes."
        )
        return StoreLocked(user, reason=reason)


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None
