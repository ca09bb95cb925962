"""`lorekeeper` as a person runs it: a process of its own on a data folder of its own (SQLite,
milvus-lite, the embedding model built once into the shared EMBEDDING_CACHE_DIR), in a shell
pipeline or typed into a terminal."""

from __future__ import annotations

import asyncio
import functools
import os
import pty
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cli.conftest import HANDBOOK

# Settings read from the environment would override the folder's own.
_SETTINGS = ("DATABASE_URL", "MILVUS_URI", "MILVUS_COLLECTION", "GROQ_API_KEY", "GROQ_BASE_URL")
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Folder:
    """A data folder and the environment that points `lorekeeper` at it."""

    path: Path
    env: dict[str, str] = field(repr=False)

    def argv(self, *args: str, importtime: bool = False) -> list[str]:
        return [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "bot", *args]

    def run(
        self, *args: str, importtime: bool = False, env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `lorekeeper ARGS` to the end; its output as text."""
        kw.setdefault("capture_output", True)
        return subprocess.run(
            self.argv(*args, importtime=importtime),
            env={**self.env, **(env or {})},
            cwd=self.path,
            text=True,
            timeout=300,
            check=False,
            **kw,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start `lorekeeper ARGS` with pipes for stdin, stdout and stderr."""
        return subprocess.Popen(
            self.argv(*args),
            env={**self.env, **(env or {})},
            cwd=self.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def into_closed_pipe(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`lorekeeper ARGS | true`, with the reader gone before the first byte: every write
        to stdout fails (EPIPE), whatever the timing. Its stderr as text; no stdout."""
        read, write = os.pipe()
        os.close(read)
        try:
            return self.run(*args, stdout=write, stderr=subprocess.PIPE, capture_output=False)
        finally:
            os.close(write)

    def piped(self, *args: str, into: list[str]) -> tuple[subprocess.CompletedProcess[str], str]:
        """`lorekeeper ARGS | INTO...` as a shell runs it: the lorekeeper process (its exit
        code and stderr) and what the reader printed."""
        writer = subprocess.Popen(
            self.argv(*args),
            env=self.env,
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert writer.stdout is not None and writer.stderr is not None
        reader = subprocess.run(into, stdin=writer.stdout, capture_output=True, timeout=300)
        writer.stdout.close()  # the shell keeps no end of the pipe open either
        err = writer.stderr.read().decode()
        writer.stderr.close()
        code = writer.wait(timeout=300)
        done = subprocess.CompletedProcess(writer.args, code, "", err)
        return done, reader.stdout.decode()

    def terminal(self, *args: str, env: dict[str, str] | None = None) -> Terminal:
        """`lorekeeper ARGS` typed into a terminal of its own."""
        return Terminal(self.argv(*args), env={**self.env, **(env or {})}, cwd=self.path)


def folder(path: Path) -> Folder:
    """An empty data folder at ``path`` (its database is made by the first command)."""
    path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in _SETTINGS}
    env.update(
        LOREKEEPER_DATA_DIR=str(path),
        DATABASE_URL=f"sqlite+aiosqlite:///{path / 'lorekeeper.db'}",
        MILVUS_URI=str(path / "milvus.db"),
        CHUNK_SIZE="300",
        CHUNK_OVERLAP="50",
        HF_HUB_OFFLINE="1",
    )
    return Folder(path, env)


def handbook_folder(path: Path) -> Folder:
    """A data folder with the handbook ingested into the 'handbook' namespace."""
    made = folder(path)
    docs = path / "docs"
    docs.mkdir()
    (docs / "handbook.md").write_text(HANDBOOK)
    done = made.run("ingest", str(docs), "--namespace", "handbook")
    assert done.returncode == 0, done.stderr
    return made


def imported(importtime_log: str) -> set[str]:
    """The top-level packages a ``-X importtime`` log shows imported."""
    return {name.split(".")[0] for _, name in _IMPORTED.findall(importtime_log)}


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, waiting to be reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# The child makes the terminal its controlling one (it leads a session of its own), so that a
# Ctrl-C typed there is the terminal's SIGINT to its foreground process group, as in a shell.
_CONTROLLING_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Terminal:
    """A process on a pseudo-terminal: stdin and stdout are the terminal, stderr is kept
    apart. ``type`` is the keyboard (``CTRL_C``, ``CTRL_D``), ``screen`` what it shows."""

    CTRL_C = "\x03"
    CTRL_D = "\x04"

    def __init__(self, argv: list[str], *, env: dict[str, str], cwd: Path) -> None:
        master, slave = pty.openpty()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CONTROLLING_TERMINAL, *argv],
                env=env,
                cwd=cwd,
                stdin=slave,
                stdout=slave,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self._master = master
        self._screen = bytearray()
        self._stderr = bytearray()
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._drain, args=(read, into), daemon=True)
            for read, into in (
                (self._read_master, self._screen),
                (functools.partial(os.read, self.process.stderr.fileno()), self._stderr),
            )
        ]
        for reader in self._readers:
            reader.start()

    def _read_master(self, size: int) -> bytes:
        try:
            return os.read(self._master, size)
        except OSError:  # EIO: every process holding the terminal is gone
            return b""

    @staticmethod
    def _drain(read: Any, into: bytearray) -> None:
        while chunk := read(65536):
            into.extend(chunk)

    @property
    def screen(self) -> str:
        """Everything shown so far (echoed keys too), with the terminal's CR LF as LF."""
        return bytes(self._screen).decode(errors="replace").replace("\r\n", "\n")

    @property
    def stderr(self) -> str:
        return bytes(self._stderr).decode(errors="replace")

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    async def expect(self, text: str, *, after: int = 0, seconds: float = 60.0) -> int:
        """Wait until ``text`` shows past position ``after`` of the screen; where it ends."""
        deadline = time.monotonic() + seconds
        while (found := self.screen.find(text, after)) < 0:
            gone = self.process.poll() is not None and not self._readers[0].is_alive()
            if gone or time.monotonic() > deadline:
                raise AssertionError(
                    f"{text!r} not shown (exit code {self.process.poll()}); screen:\n"
                    f"{self.screen[after:]}\nstderr:\n{self.stderr}"
                )
            await asyncio.sleep(0.02)
        return found + len(text)

    async def exited(self, *, seconds: float) -> int:
        """The exit code, which must come within ``seconds``; by then ``screen`` and
        ``stderr`` hold all the process wrote."""
        deadline = time.monotonic() + seconds
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running {seconds}s later; screen:\n{self.screen}")
            await asyncio.sleep(0.02)
        for reader in self._readers:
            await asyncio.to_thread(reader.join, 2.0)
        return code

    def close(self) -> None:
        """Kill the process if it still runs; release the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:  # they stop at the end of output, which came with exit
            reader.join(timeout=5)
        os.close(self._master)
        if self.process.stderr is not None:
            self.process.stderr.close()


def mentioning(path: Path) -> set[int]:
    """The live processes with ``path`` in their command line (a milvus-lite server is
    started on its file, and only that names it)."""
    target = str(path.absolute()).encode()
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        if pid != os.getpid() and any(target in arg for arg in argv) and alive(pid):
            found.add(pid)
    return found


async def until_none_mention(path: Path, *, seconds: float = 10.0) -> None:
    """Wait until no process names ``path`` (fails after ``seconds``: an orphan)."""
    deadline = time.monotonic() + seconds
    while left := mentioning(path):
        if time.monotonic() > deadline:
            raise AssertionError(f"still running on {path}: {sorted(left)}")
        await asyncio.sleep(0.05)
