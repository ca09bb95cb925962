"""`lorekeeper demo`, the README's main job, as a newcomer runs it: a fresh process, settings
from the environment only (as in the Docker image), a `docs/` folder in the working directory,
questions typed on stdin. Before anything is indexed, `ask` answers with a reason and prints
nothing of Milvus' internals."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLACK_DOC = """\
# Adding Lorekeeper to Slack

To add Lorekeeper to Slack, create a Slack app from the manifest in `deploy/slack/manifest.yml`
and install it to your workspace. Then put its bot token in `.env` as `SLACK_BOT_TOKEN`.
"""
TOKEN_SENTENCE = "To add Lorekeeper to Slack, create a Slack app from the manifest"
# What milvus-lite's server and pymilvus print when a BM25 search reaches a collection that has
# never held a row: none of it may reach the terminal.
LEAKS = ("Traceback", "MilvusException", "isfinite", "NaN or Inf")


async def _lorekeeper(
    cwd: Path, env: dict[str, str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--env-file", os.devnull, *argv,
        cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_demo_indexes_docs_and_answers_from_them_with_a_file_milvus_uri(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "slack.md").write_text(SLACK_DOC)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DISCORD_", "GROQ_", "MILVUS_", "LOREKEEPER_"))
    }
    env |= {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        # a file path in the environment, as deploy/Dockerfile sets it: pymilvus refuses one
        # when it is imported (test_settings checks that a second settings load sees it too)
        "MILVUS_URI": str(tmp_path / "store" / "milvus.db"),
        "LOREKEEPER_DATA_DIR": str(tmp_path / "data"),
    }

    # nothing indexed yet: a reason, and nothing of Milvus' internals
    code, out, err = await _lorekeeper(tmp_path, env, "ask", "How do I add Lorekeeper to Slack?")
    assert code == 0, err[-2000:]
    assert out.endswith("I couldn't find that in general.\n"), out
    assert not [leak for leak in LEAKS if leak in out + err], out + err

    question = "How do I add Lorekeeper to Slack?\n"
    code, out, err = await _lorekeeper(tmp_path, env, "demo", stdin=question)
    assert code == 0, err[-2000:]
    assert "1 files, " in out and ", 0 failed" in out, out
    answer = out.split("(searching docs…)", 1)[1]
    assert "I couldn't find" not in answer, out
    assert TOKEN_SENTENCE in answer and "slack.md" in answer, answer
    assert not [leak for leak in LEAKS if leak in out + err], out + err
    # the configured store holds the chunks, not a ./data/milvus.db beside it
    assert (tmp_path / "store" / "milvus.db").exists()
    assert not (tmp_path / "data" / "milvus.db").exists()
