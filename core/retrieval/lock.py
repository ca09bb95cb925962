"""One owner per embedded vector store file: milvus-lite corrupts a file two processes open, so
only the lock's holder serves it (``core.retrieval.lite_server``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


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

    def try_acquire(self) -> bool:
        """Take the lock if no other holder has it; False when another does."""
        if self._fd is not None:
            return True
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid the lock file names: its holder's, when the lock is held."""
        try:
            fd = os.open(self._lock_path, os.O_RDONLY)
        except OSError:
            return None
        try:
            return _read_pid(fd)
        finally:
            os.close(fd)

    def release(self) -> None:
        """Drop the lock (the file stays; its content no longer matters)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None
