"""Wall time of the one-shot `lorekeeper` commands and of the terminal chat's first answer,
beside a bare `python -c pass` measured in the same run.

Each command runs as a subprocess on a prepared data folder (SQLite, milvus-lite, the project's
docs/ ingested into a 'docs' namespace, the int8 model built with `lorekeeper model build`, no
GROQ_API_KEY: extractive answers), once untimed to warm the page cache, then ``--runs`` times;
the table holds the medians. The chat is timed from its prompt appearing to the first answer's
sources, the question sent the moment the prompt shows.

    .venv/bin/python bench/cli_latency.py [--runs 5] [--backend auto|onnx-int8|torch-bf16|torch]
        [--write]

``--backend`` sets EMBEDDING_BACKEND (default: auto, whatever this CPU picks; the table says
which). With --write each backend's table replaces its own section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import select
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import cpu  # noqa: E402

from core.retrieval.embedder import auto_backend  # noqa: E402

LOREKEEPER = str(Path(sys.executable).with_name("lorekeeper"))
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## CLI latency (bench/cli_latency.py)"
QUESTION = "how do I back up the database?"


@dataclass(frozen=True)
class Case:
    label: str
    argv: tuple[str, ...]
    target: float | None  # seconds


CASES = (
    Case("`python -c pass` (baseline)", (sys.executable, "-c", "pass"), None),
    Case("`lorekeeper --help`", (LOREKEEPER, "--help"), None),
    Case("`lorekeeper namespaces`", (LOREKEEPER, "namespaces"), 1.0),
    Case("`lorekeeper usage`", (LOREKEEPER, "usage"), 1.0),
    Case("`lorekeeper jobs run rollup`", (LOREKEEPER, "jobs", "run", "rollup"), None),
    Case('`lorekeeper search "…" -n docs`', (LOREKEEPER, "search", QUESTION, "-n", "docs"), None),
    Case('`lorekeeper ask "…"`', (LOREKEEPER, "ask", QUESTION), 2.0),
)
CHAT_TARGET = 1.0


def _env(folder: Path, backend: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", LOREKEEPER_DATA_DIR=str(folder))
    env["EMBEDDING_BACKEND"] = backend
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'lk.db'}"
    env["MILVUS_URI"] = str(folder / "milvus.db")
    env["EMBEDDING_CACHE_DIR"] = str(folder / "models")
    env.pop("GROQ_API_KEY", None)
    return env


def _run(argv: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()}")
    return elapsed


def _prepare(env: dict[str, str], cwd: Path) -> None:
    for argv in (
        (LOREKEEPER, "model", "build"),
        (LOREKEEPER, "ingest", str(ROOT / "docs"), "--namespace", "docs"),
    ):
        subprocess.run(argv, env=env, cwd=cwd, check=True, capture_output=True)


def _wait_for(proc: subprocess.Popen[bytes], token: bytes, seen: bytearray) -> None:
    assert proc.stdout is not None
    end = time.monotonic() + 120
    while token not in seen:
        if time.monotonic() > end or proc.poll() is not None:
            raise RuntimeError(f"no {token!r} from the chat: {bytes(seen)[-500:]!r}")
        ready, _, _ = select.select([proc.stdout], [], [], 0.01)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)


def _chat_once(env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Seconds to the prompt, and from the prompt to the first answer's sources."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [LOREKEEPER, "chat"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        bufsize=0,
    )
    assert proc.stdin is not None
    seen = bytearray()
    try:
        _wait_for(proc, b"> ", seen)
        prompt = time.perf_counter()
        seen.clear()
        proc.stdin.write(QUESTION.encode() + b"\n")
        _wait_for(proc, b"Sources:", seen)
        answered = time.perf_counter()
        proc.stdin.close()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return prompt - started, answered - prompt


def _row(label: str, times: list[float], target: float | None) -> str:
    median = statistics.median(times)
    met = "" if target is None else ("yes" if median <= target else "no")
    goal = "" if target is None else f"<= {target:g} s"
    return (
        f"| {label} | {median:.2f} s | {min(times):.2f} s | {max(times):.2f} s | {goal} | {met} |"
    )


def measure(runs: int, backend: str) -> str:
    with tempfile.TemporaryDirectory(prefix="lk-cli-bench-") as tmp:
        folder = Path(tmp)
        env = _env(folder, backend)
        _prepare(env, folder)
        times: dict[str, list[float]] = {c.label: [] for c in CASES}
        for case in CASES:
            _run(case.argv, env, folder)  # untimed: page cache, first-run work
        for _ in range(runs):  # interleaved, so a slow moment hits every command alike
            for case in CASES:
                times[case.label].append(_run(case.argv, env, folder))
        _chat_once(env, folder)
        chats = [_chat_once(env, folder) for _ in range(runs)]
    model, flags = cpu()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    picked = auto_backend() if backend == "auto" else backend
    lines = [
        f"Command: `.venv/bin/python bench/cli_latency.py --runs {runs} --backend {backend}`."
        f" Machine: {model}, {os.cpu_count()} CPUs, flags {flags}; embedding backend"
        f" {picked}{' (what auto picks here)' if backend == 'auto' else ''};"
        f" Python {platform.python_version()}; load average after the run {load}."
        f" Date: {dt.date.today().isoformat()}. Medians of {runs} runs each, the commands"
        " interleaved; a prepared data folder (SQLite, milvus-lite, docs/ ingested, the int8"
        " model built, extractive answers).",
        "",
        "| command | median | min | max | target | met |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [_row(c.label, times[c.label], c.target) for c in CASES]
    lines.append(_row("`lorekeeper chat`: prompt shown", [c[0] for c in chats], None))
    lines.append(
        _row("`lorekeeper chat`: prompt to first answer", [c[1] for c in chats], CHAT_TARGET)
    )
    return "\n".join(lines)


def write(body: str, section: str, path: Path = DOC) -> None:
    """Replace this benchmark's section of the doc (or add it at the end)."""
    text = path.read_text(encoding="utf-8")
    block = f"{section}\n\n{body.strip()}\n"
    if section in text:
        head, _, rest = text.partition(section)
        nxt = rest.find("\n## ")
        after = "" if nxt < 0 else rest[nxt:]
        text = f"{head}{block}{after}"
    else:
        text = text.rstrip("\n") + f"\n\n{block}"
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnx-int8", "torch-bf16", "torch"],
        help="EMBEDDING_BACKEND of the commands (default: auto)",
    )
    parser.add_argument("--write", action="store_true", help=f"put the table into {DOC.name}")
    args = parser.parse_args()
    body = measure(args.runs, args.backend)
    print(body)
    if args.write:
        write(body, SECTION if args.backend == "auto" else f"{SECTION[:-1]}, {args.backend})")


if __name__ == "__main__":
    main()
