"""How long the terminal chat's first answer takes when the user types it a few seconds after
the prompt appears, against the second answer in the same chat (the model warm) as baseline.

Runs `lorekeeper chat` as a subprocess on a scratch data folder with the project's docs/
ingested (the embedded default: SQLite, milvus-lite, local embeddings, extractive answers).

    .venv/bin/python bench/chat_first_answer.py [--pause 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOREKEEPER = str(Path(sys.executable).with_name("lorekeeper"))
QUESTIONS = ("how do I add Lorekeeper to Slack?", "how do I back up the database?")


def _env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", LOREKEEPER_DATA_DIR=str(folder))
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'lk.db'}"
    env["MILVUS_URI"] = str(folder / "milvus.db")
    env.pop("GROQ_API_KEY", None)
    return env


class Chat:
    def __init__(self, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            [LOREKEEPER, "chat", "--namespace", "docs"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
        )
        self._out = b""

    def wait_for(self, token: bytes, timeout: float = 120.0) -> None:
        assert self._proc.stdout is not None
        end = time.monotonic() + timeout
        while token not in self._out:
            if time.monotonic() > end:
                raise TimeoutError(f"no {token!r} from the chat")
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.02)
            if ready:
                self._out += os.read(self._proc.stdout.fileno(), 65536)

    def ask(self, question: str) -> float:
        """Seconds from sending the question to its sources being printed."""
        assert self._proc.stdin is not None
        self._out = b""
        started = time.monotonic()
        self._proc.stdin.write(question.encode() + b"\n")
        self.wait_for(b"Sources:")
        return time.monotonic() - started

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        self._proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pause", type=float, default=5.0, help="seconds the user takes to type")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lk-chat-bench-") as tmp:
        env = _env(Path(tmp))
        subprocess.run(
            [LOREKEEPER, "ingest", str(ROOT / "docs"), "--namespace", "docs"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        firsts, seconds, prompts = [], [], []
        for _ in range(args.rounds):
            started = time.monotonic()
            chat = Chat(env)
            chat.wait_for(b"> ")
            prompts.append(time.monotonic() - started)
            time.sleep(args.pause)
            firsts.append(chat.ask(QUESTIONS[0]))
            seconds.append(chat.ask(QUESTIONS[1]))
            chat.close()
    first, second = statistics.median(firsts), statistics.median(seconds)
    print(
        f"Command: `.venv/bin/python bench/chat_first_answer.py --pause {args.pause:g} "
        f"--rounds {args.rounds}`; medians of {args.rounds} chats.\n\n"
        "| prompt shown after | first answer (typed after the pause) | second answer (baseline) "
        "| first / second |\n|---:|---:|---:|---:|\n"
        f"| {statistics.median(prompts):.2f} s | {first:.2f} s | {second:.2f} s "
        f"| {first / second:.1f}x |"
    )


if __name__ == "__main__":
    main()
