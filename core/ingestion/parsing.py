"""Reading one file into chunks, and the loop a parser worker process runs.

``parse`` is the whole CPU-bound part of ingestion: ``extract`` then ``chunk_text``. The worker
processes of ``core.ingestion.workers`` run it through ``main`` and ``serve``, importing only
the ingestion modules and their readers, never torch or the bot. A worker lowers its own CPU
priority, caps its address space (``RLIMIT_AS``), offers itself first to the kernel's
out-of-memory killer, dies with the bot (``PR_SET_PDEATHSIG``) and stops itself a little after
the bot's deadline for a file, so a hostile file can cost neither the bot's cores nor its
memory, and no worker outlives the bot.

The pipe protocol: the bot writes a job and the worker answers each with one frame; a frame is
an 8-byte big-endian length and a pickle, and a job is a frame of its settings followed by the
file's bytes as they are (length first), never copied into a pickle. The worker's first frame
says it is ready. Jobs come from the bot that started the worker; replies come from a process
that read hostile bytes, so the bot unpickles only the result's own types from them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import math
import os
import pickle
import resource
import signal
import sys
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from core.errors import UnsupportedFile
from core.ingestion.chunking import Chunk, chunk_text
from core.ingestion.extract import ExtractLimits, extract

_HEADER = 8
_REPLY_CLASSES = frozenset(
    {("core.ingestion.parsing", "Parsed"), ("core.ingestion.chunking", "Chunk")}
)
_PR_SET_PDEATHSIG = 1
STOP_GRACE = 5  # seconds a worker gives the parent to kill it before it stops itself


@dataclass(frozen=True, slots=True)
class ParseJob:
    """One file to read: its bytes, the limits to read it under, and how to chunk it."""

    data: bytes
    filename: str
    limits: ExtractLimits
    chunk_size: int
    chunk_overlap: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """A file read and chunked: its kind ("pdf", "docx", ...), its title if it has one."""

    kind: str
    title: str | None
    chunks: tuple[Chunk, ...]


def parse(job: ParseJob) -> Parsed:
    """Extract a file's text and chunk it; raises ``UnsupportedFile`` saying why it can't."""
    extracted = extract(job.data, job.filename, limits=job.limits)
    chunks = chunk_text(
        extracted.text, size=job.chunk_size, overlap=job.chunk_overlap, pages=extracted.pages
    )
    return Parsed(extracted.kind, extracted.title, tuple(chunks))


def write_frame(stream: IO[bytes], value: object) -> None:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(payload).to_bytes(_HEADER, "big"))
    stream.write(payload)
    stream.flush()


def write_job(stream: IO[bytes], job: ParseJob) -> None:
    write_frame(stream, replace(job, data=b""))
    stream.write(len(job.data).to_bytes(_HEADER, "big"))
    stream.write(job.data)
    stream.flush()


def read_job(stream: IO[bytes]) -> ParseJob:
    """The next job (a worker reads what the bot sent); ``EOFError`` when the bot has gone."""
    header = _read_exactly(stream, _HEADER)
    job = pickle.loads(_read_exactly(stream, int.from_bytes(header, "big")))
    if not isinstance(job, ParseJob):
        raise EOFError(f"expected a ParseJob, got {type(job).__name__}")
    size = int.from_bytes(_read_exactly(stream, _HEADER), "big")
    return replace(job, data=_read_exactly(stream, size))


class _ReplyUnpickler(pickle.Unpickler):
    """A reply comes from a process that read hostile bytes: only result types may load."""

    def find_class(self, module: str, name: str) -> type:
        if (module, name) not in _REPLY_CLASSES:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a parse result")
        found: type = super().find_class(module, name)
        return found


def read_reply(stream: IO[bytes]) -> object:
    """The next reply of a worker; raises ``EOFError`` when the worker has gone."""
    header = _read_exactly(stream, _HEADER)
    payload = _read_exactly(stream, int.from_bytes(header, "big"))
    return _ReplyUnpickler(io.BytesIO(payload)).load()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError("the other side of the pipe has gone")
    return data


def _answer(job: ParseJob, timeout: float) -> tuple[str, object]:
    """("ok", Parsed), ("refused", why), ("memory", "") or ("error", traceback)."""
    signal.alarm(math.ceil(timeout) + STOP_GRACE)
    try:
        return "ok", parse(job)
    except UnsupportedFile as exc:
        return "refused", exc.why
    except MemoryError:
        return "memory", ""
    except Exception:
        return "error", traceback.format_exc(limit=20)
    finally:
        signal.alarm(0)


def serve(replies: IO[bytes], jobs: IO[bytes], *, timeout: float) -> None:
    """Answer jobs until the parent closes the pipe. After running out of memory the worker
    answers and exits: its heap is fragmented and the pool starts a fresh one."""
    write_frame(replies, ("ready", os.getpid()))
    while True:
        try:
            answer = _answer(read_job(jobs), timeout)
        except EOFError:
            return
        except MemoryError:
            answer = ("memory", "")
        try:
            write_frame(replies, answer)
        except MemoryError:
            answer = ("memory", "")
            write_frame(replies, answer)
        if answer[0] == "memory":
            return


def _die_with_parent(parent: int) -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """A worker process's entry point; ``WorkerPool`` passes the arguments."""
    options = argparse.ArgumentParser()
    options.add_argument("--parent", type=int, required=True)
    options.add_argument("--memory", type=int, required=True)
    options.add_argument("--timeout", type=float, required=True)
    options.add_argument("--nice", type=int, default=10)
    args = options.parse_args(argv)
    _die_with_parent(args.parent)
    # Ctrl-C in a terminal reaches the whole process group: it is the bot's to handle (the
    # terminal chat stops an answer with it), and the bot ends its workers by closing the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(args.nice)
    with contextlib.suppress(OSError):  # short of memory, the kernel kills a worker, not the bot
        Path("/proc/self/oom_score_adj").write_text("1000")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = args.memory if hard == resource.RLIM_INFINITY else min(args.memory, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the replies
    serve(replies, sys.stdin.buffer, timeout=args.timeout)
