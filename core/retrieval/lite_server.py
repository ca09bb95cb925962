"""The embedded vector store shared by every process on one machine.

milvus-lite corrupts a file that two processes open, so one process, the owner, opens it: the
holder of ``StoreLock`` on ``<file>.lock`` runs the milvus-lite server on the file, listening
on a port of 127.0.0.1 only, and writes ``<pid> 127.0.0.1:<port>`` to ``<file>.address``.
Every process, the owner too, talks to that server over gRPC; the CLI works beside a running
bot, and a document one of them ingests is searched by the other at once.

- **Trust.** An address is used only while the store lock is held and the lock file names the
  pid the address file names: an address left by an owner that crashed is ignored (the lock
  went with its process), and a new owner deletes it before serving.
- **No orphan.** The owner holds a POSIX record lock on ``<file>.serve.lock`` and gives its
  path to milvus-lite, which exits as soon as it can take that lock: when the owner stops, or
  dies in any way (SIGKILL included), its server goes too. The server runs in a session of its
  own, so a Ctrl-C in the terminal reaches only the Lorekeeper process.
- **Hand-over.** When the owner goes, the next call of a connected process fails; that process
  takes the free lock and serves the file itself, or connects to whichever process did
  (``MilvusVectorStore`` reconnects and repeats the call, which is safe: every call is a
  search, a read, an upsert by id or a delete).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import logging
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from core.errors import StoreLocked
from core.retrieval.lock import StoreLock

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
START_SECONDS = 30.0  # for milvus-lite to listen after it was started
STOP_SECONDS = 5.0  # for milvus-lite to exit once its owner let go of it
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,36}$")  # what milvus-lite accepts as a file name
_LOG_LEVEL = "ERROR"


class LiteServer:
    """One embedded store file: its owner's milvus-lite server, or the address to reach it.

    ``attach()`` returns the URI to connect to (serving the file when no process does);
    ``stop()`` ends this process's part (its server, when it owns the file).
    """

    def __init__(self, db_path: str | Path) -> None:
        self._db = Path(db_path).absolute()
        if not _NAME.match(self._db.name):
            raise ValueError(
                f"embedded store file name {self._db.name!r}: use at most 36 letters, digits, "
                "'.', '-' or '_'"
            )
        self._lock = StoreLock(self._db)
        self._address_path = self._db.with_name(self._db.name + ".address")
        self._serve_lock_path = self._db.with_name(self._db.name + ".serve.lock")
        self._serve_lock: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._uri: str | None = None

    @property
    def owns(self) -> bool:
        """Whether this process holds the file (and serves it)."""
        return self._lock.held

    def attach(self) -> str | None:
        """The URI of the file's server: this process's own when the file was free (it is
        served from now on), else its owner's; None while an owner is still starting."""
        if self.owns or self._lock.try_acquire():
            return self._serve()
        return self.published()

    def published(self) -> str | None:
        """The owner's address, when the address file is the current owner's."""
        try:
            pid, address = self._address_path.read_text(encoding="ascii").split()
        except (OSError, ValueError):
            return None
        host, _, port = address.partition(":")
        if host != HOST or not port.isdigit() or not 0 < int(port) < 65536:
            return None
        if not pid.isdigit() or int(pid) != self._lock.holder():
            return None
        return f"http://{HOST}:{int(port)}"

    def serving(self, uri: str) -> bool:
        """Whether ``uri`` still reaches the file's server (False: reconnect)."""
        if self.owns:
            return uri == self._uri and self._process is not None and self._process.poll() is None
        return self.published() == uri and _listening(uri)

    def busy_error(self) -> StoreLocked:
        """The error for a file whose owner does not serve it."""
        holder = self._lock.holder()
        who = f" (pid {holder})" if holder is not None else ""
        return StoreLocked(
            f"The vector store {self._db.name} is held by another Lorekeeper process{who} "
            "that does not serve it. Stop that process, or use a Milvus server.",
            reason=(
                f"The embedded vector store {self._db} is held by another process{who} that "
                "does not serve it (an older Lorekeeper?). Stop that process, or use a Milvus "
                "server (MILVUS_URI=http://...)."
            ),
        )

    def stop(self) -> None:
        """Stop serving (when this process owns the file) and let go of it."""
        if not self.owns:
            return
        if self.published() is not None:
            self._address_path.unlink(missing_ok=True)
        self._end_server()
        self._uri = None
        self._lock.release()

    def _serve(self) -> str:
        if self._uri is not None and self.serving(self._uri):
            return self._uri
        self._end_server()
        self._address_path.unlink(missing_ok=True)  # a crashed owner's
        self._hold_serve_lock()
        port = self._start()
        uri = f"http://{HOST}:{port}"
        tmp = self._address_path.with_name(self._address_path.name + ".tmp")
        tmp.write_text(f"{os.getpid()} {HOST}:{port}\n", encoding="ascii")
        os.replace(tmp, self._address_path)
        self._uri = uri
        log.info("milvus-lite: serving %s on %s:%d", self._db.name, HOST, port)
        return uri

    def _hold_serve_lock(self) -> None:
        if self._serve_lock is not None:
            return
        fd = os.open(self._serve_lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        self._serve_lock = fd

    def _start(self) -> int:
        """Start milvus-lite on a free loopback port; its port once it listens."""
        for _ in range(5):  # another program may take the port before milvus-lite binds it
            port = _free_port()
            process = _spawn(self._db, port, self._serve_lock_path)
            if _wait_listening(process, port):
                self._process = process
                return port
        raise RuntimeError(f"milvus-lite did not start on {self._db}")

    def _end_server(self) -> None:
        """Let the server go (it exits once it can take the serve lock) and reap it."""
        fd, self._serve_lock = self._serve_lock, None
        if fd is not None:
            os.close(fd)  # drops the record lock
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _binary() -> Path:
    spec = importlib.util.find_spec("milvus_lite")  # located, not imported (it is slow)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("milvus-lite is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "lib" / "milvus"


def _spawn(db: Path, port: int, serve_lock: Path) -> subprocess.Popen[bytes]:
    binary = _binary()
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(binary.parent), os.environ.get("LD_LIBRARY_PATH")) if p
    )
    return subprocess.Popen(
        [str(binary), str(db), f"{HOST}:{port}", _LOG_LEVEL, str(serve_lock)],
        env=env,
        cwd=db.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,  # its assertions would land in the terminal chat
        start_new_session=True,
    )


def _wait_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _listening(f"http://{HOST}:{port}"):
            return True
        time.sleep(0.01)
    process.kill()
    process.wait()
    return False


def _listening(uri: str) -> bool:
    port = int(uri.rsplit(":", 1)[1])
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1.0):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
