"""Reading files away from the bot: the ``Parser`` port and its pool of worker processes.

``IngestionService`` reads every file through a ``Parser`` (``core.ingestion.parsing.parse``:
extract, then chunk). ``WorkerPool``, the bot's, runs each file in a separate worker process, so
a hostile file can take neither the event loop, nor the threads that answer questions, nor the
bot's memory. Its invariants:

- Workers are fresh interpreters (exec'd, never forked: the bot runs threads, torch and gRPC)
  that import only the ingestion modules. They start on first use and stay warm; at most
  ``workers`` exist and each reads one file at a time; a file waits for a free worker.
- A file gets ``timeout`` seconds in its worker, from the moment the worker takes it. Past that
  the worker is killed and the file refused: "reading it took longer than 60 s".
- A worker's address space is capped at ``memory_mb`` (``RLIMIT_AS``). A worker that runs out
  answers so and exits; one that crashes is found dead. Either way the file is refused in plain
  words and the next file gets a fresh worker.
- Workers run at a lower CPU priority (``nice``), so the bot keeps answering while they read.
- ``close()`` kills and reaps every worker. A worker also dies with the bot and exits when its
  pipe closes, so none outlives the bot.
- The pool's own threads carry the pipes, never asyncio's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from core.errors import UnsupportedFile
from core.ingestion.parsing import Parsed, ParseJob, parse, read_reply, write_job

log = logging.getLogger(__name__)

_ROOT = str(Path(__file__).resolve().parents[2])  # the directory that holds ``core``
_START_TIMEOUT = 60.0
_REAP_TIMEOUT = 10.0


class Parser(Protocol):
    """Reads files into chunks off the event loop; ``close()`` releases what it holds."""

    async def parse(self, job: ParseJob) -> Parsed:
        """The file read and chunked, or ``UnsupportedFile`` saying in plain words why not."""
        ...

    async def close(self) -> None: ...


class InlineParser:
    """The ``Parser`` port in this process, in a thread: the element caps hold, the wall-time
    and memory limits do not. For tests and tools that read trusted files; the bot uses
    ``WorkerPool``."""

    async def parse(self, job: ParseJob) -> Parsed:
        return await asyncio.to_thread(parse, job)

    async def close(self) -> None:
        return None


class WorkerError(RuntimeError):
    """A worker failed in a way that is not the file's fault (it did not start, or a bug)."""


class _Died(Exception):
    def __init__(self, returncode: int | None) -> None:
        super().__init__(f"parser worker exited with {returncode}")
        self.returncode = returncode


class _Worker:
    """One worker process; ``exchange`` blocks, so it runs in one of the pool's threads."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def exchange(self, job: ParseJob) -> object:
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            write_job(self.process.stdin, job)
            return read_reply(self.process.stdout)
        except (EOFError, OSError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(_REAP_TIMEOUT)
            raise _Died(self.process.returncode) from None

    def ready(self) -> object:
        assert self.process.stdout is not None
        try:
            return read_reply(self.process.stdout)
        except (EOFError, OSError):
            raise _Died(self.process.poll()) from None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()

    def reap(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_REAP_TIMEOUT)
        for pipe in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


class WorkerPool:
    """The ``Parser`` port on a pool of worker processes (see the module docstring)."""

    def __init__(
        self, *, workers: int = 2, timeout: float = 60.0, memory_mb: int = 1024, nice: int = 10
    ) -> None:
        if workers < 1 or timeout <= 0 or memory_mb < 1:
            raise ValueError("need workers >= 1, timeout > 0 and memory_mb >= 1")
        self._size = workers
        self._timeout = timeout
        self._memory_mb = memory_mb
        self._nice = nice
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._threads = ThreadPoolExecutor(2 * workers + 1, thread_name_prefix="parser-pipe")
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers alive now (for health checks, benchmarks and tests)."""
        return [w.process.pid for w in self._workers if w.alive]

    async def parse(self, job: ParseJob) -> Parsed:
        """Read ``job`` in a worker; refuses with ``UnsupportedFile`` when a limit is hit."""
        async with self._slot():
            worker = await self._take()
            try:
                reply = await asyncio.wait_for(self._exchange(worker, job), self._timeout)
            except TimeoutError:
                await self._retire(worker)
                raise UnsupportedFile(job.filename, self._too_slow()) from None
            except _Died as died:
                await self._retire(worker)
                raise UnsupportedFile(job.filename, self._died_words(died)) from None
            except BaseException:  # cancelled: the worker is still reading this file
                self._discard(worker)
                raise
            status, value = reply if isinstance(reply, tuple) and len(reply) == 2 else ("", reply)
            if status == "memory" or self._closed:
                await self._retire(worker)
            else:
                self._idle.append(worker)
            return self._outcome(status, value, job.filename)

    async def close(self) -> None:
        """Kill and reap every worker; a closed pool reads no more files."""
        self._closed = True
        workers, self._idle = list(self._workers), []
        self._workers.clear()
        for worker in workers:
            worker.kill()
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._threads, w.reap) for w in workers))
        self._threads.shutdown(wait=False)

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self._size), loop
        return self._slots

    async def _take(self) -> _Worker:
        if self._closed:
            raise WorkerError("the parser pool is closed")
        while self._idle:
            worker = self._idle.pop()
            if worker.alive:
                return worker
            self._discard(worker)
        return await self._start()

    async def _start(self) -> _Worker:
        # Started from the event loop's thread, which lives as long as the bot: a worker's
        # PR_SET_PDEATHSIG fires when the thread that started it ends. Popen uses vfork: quick.
        process = subprocess.Popen(  # noqa: ASYNC220
            self._command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(_pythonpath())},
        )
        worker = _Worker(process)
        self._workers.add(worker)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.run_in_executor(self._threads, worker.ready), _START_TIMEOUT
            )
        except (TimeoutError, _Died) as exc:
            self._discard(worker)
            raise WorkerError(f"a parser worker did not start ({exc})") from None
        except BaseException:
            self._discard(worker)
            raise
        return worker

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-c",  # not -m: the job and result classes must be core.ingestion.parsing's
            "from core.ingestion.parsing import main; main()",
            f"--parent={os.getpid()}",
            f"--memory={self._memory_mb * 1024 * 1024}",
            f"--timeout={self._timeout}",
            f"--nice={self._nice}",
        ]

    async def _exchange(self, worker: _Worker, job: ParseJob) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, worker.exchange, job)

    def _outcome(self, status: object, value: object, filename: str) -> Parsed:
        if status == "ok" and isinstance(value, Parsed):
            return value
        if status == "refused":
            raise UnsupportedFile(filename, str(value))
        if status == "memory":
            raise UnsupportedFile(filename, f"reading it needed more than {self._memory()}")
        raise WorkerError(f"a parser worker failed on {filename!r}:\n{value}")

    async def _retire(self, worker: _Worker) -> None:
        """Kill a worker and wait until it is gone; the next file gets a fresh one."""
        self._workers.discard(worker)
        worker.kill()
        await asyncio.get_running_loop().run_in_executor(self._threads, worker.reap)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker now and reap it in the background (the caller can't wait)."""
        worker.kill()
        self._workers.discard(worker)
        with contextlib.suppress(RuntimeError):  # the pool's threads are shut down
            self._threads.submit(worker.reap)

    def _died_words(self, died: _Died) -> str:
        if self._closed:
            return "the bot stopped while reading it; send it again"
        if died.returncode == -signal.SIGALRM:  # the worker's own deadline, past the pool's
            return self._too_slow()
        log.warning("a parser worker died (exit status %s)", died.returncode)
        return f"reading it crashed the reader (it may need more than {self._memory()})"

    def _too_slow(self) -> str:
        return f"reading it took longer than {self._timeout:g} s"

    def _memory(self) -> str:
        mb = self._memory_mb
        amount = f"{mb // 1024} GiB" if mb % 1024 == 0 else f"{mb} MiB"
        return f"{amount} of memory"


def _pythonpath() -> list[str]:
    inherited = os.environ.get("PYTHONPATH", "")
    return [_ROOT, *(p for p in inherited.split(os.pathsep) if p)]
