"""The `lorekeeper` command line end to end: `bot.cli.main` on a real database and milvus-lite.

Every command runs through ``main`` (argument parsing, the handler, the exit code and the
one-line error for a ``LorekeeperError``) in a worker thread, as its own ``asyncio.run``, with
the session's real embedding model injected into ``bot.runtime.build``. No GROQ_API_KEY:
answers are extractive, quoted from the sources.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.container import build
from core.db.access import Database
from core.db.engine import create_engine
from core.db.models import Channel, Document, Message, Session

# Settings read from the environment would override the env file the tests write.
_SETTINGS = (
    "DATABASE_URL",
    "MILVUS_URI",
    "MILVUS_COLLECTION",
    "LOREKEEPER_DATA_DIR",
    "GROQ_API_KEY",
    "CHUNK_SIZE",
    "CHUNK_OVERLAP",
    "ANSWER_THRESHOLD",
    "RETRIEVAL_TOP_K",
)
# What `main` sets with os.environ.setdefault: set here so that monkeypatch restores them.
_QUIET = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}

HANDBOOK = """\
# Employee handbook

## Office

The office opens at 8 in the morning and closes at 7 in the evening. Visitors sign in at the \
front desk on the ground floor and wear a badge while they are in the building.

## Vacation

Every employee gets 28 paid vacation days per year. Unused vacation days carry over to the next \
year, up to a maximum of five days. Vacation requests go to your manager at least two weeks \
ahead.

## Expenses

Travel expenses are reimbursed within 30 days when the receipts are uploaded to the finance \
portal.
"""
DEPLOY = """\
# Deploying the billing service

The billing service is deployed with Helm from the main branch. Run the release pipeline, then \
check the dashboard for errors. Rollbacks use helm rollback with the previous revision number.
"""
COFFEE = (
    "The coffee machine on the third floor is descaled every Friday by the facilities team. "
    "Oat milk is in the left fridge.\n"
)
ONCALL = """\
# On-call

The on-call engineer is paged through PagerDuty and must acknowledge a page within 15 minutes.
"""
WIFI = "The guest Wi-Fi network is called Lorekeeper-Guest; its password changes every Monday.\n"
# namespace -> file name -> text; 300-character chunks split the handbook into three.
# "general" is the default namespace: the one a console channel bound to none searches.
CORPUS = {
    "team": {"handbook.md": HANDBOOK, "deploy.md": DEPLOY, "coffee.txt": COFFEE},
    "ops": {"oncall.md": ONCALL},
    "general": {"wifi.txt": WIFI},
}
VACATION = "How many vacation days do employees get per year?"
VACATION_ANSWER = "Every employee gets 28 paid vacation days per year."
DEPLOYMENT = "How is the billing service deployed?"
MONGOLIA = "what is the capital of Mongolia?"


@dataclass(frozen=True)
class Run:
    """One `lorekeeper` invocation: its exit code and what it printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


@dataclass(frozen=True)
class Lorekeeper:
    env_file: Path
    database_url: str
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    async def __call__(self, *argv: str) -> Run:
        """Run `lorekeeper --env-file ENV ARGV...` as the console script does."""
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, ["--env-file", str(self.env_file), *argv])
        out, err = self.capsys.readouterr()
        return Run(code, out, err)

    def write(self, relative: str, text: str) -> Path:
        path = self.tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    async def _rows(self, statement: Any) -> list[Any]:
        """The rows of one query on the test's database (an engine of its own, then disposed)."""
        engine = create_engine(self.database_url)
        try:
            async with Database(engine).session() as db:
                return list((await db.execute(statement)).all())
        finally:
            await engine.dispose()

    async def threads(self, channel: str) -> dict[str, list[str]]:
        """The user messages of each thread of a console channel, by thread key, in order."""
        rows = await self._rows(
            select(Session.thread_key, Message.content)
            .join(Channel, Channel.id == Session.channel_id)
            .join(Message, Message.session_id == Session.id)
            .where(Channel.external_id == channel, Message.role == "user")
            .order_by(Message.created_at, Message.id)
        )
        threads: dict[str, list[str]] = defaultdict(list)
        for thread, content in rows:
            threads[thread].append(content)
        return dict(threads)

    async def document_threads(self) -> dict[str, str | None]:
        """Each indexed document's title and the thread key of the session it was uploaded into."""
        rows = await self._rows(
            select(Document.title, Session.thread_key)
            .outerjoin(Session, Session.id == Document.session_id)
            .where(Document.status == "indexed")
        )
        return {title: thread for title, thread in rows}


@pytest.fixture
def lorekeeper(database_url, tmp_path, embedder, monkeypatch, capsys) -> Lorekeeper:
    """`lorekeeper` on a fresh database of each kind and its own milvus-lite file."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in _QUIET.items():
        monkeypatch.setenv(name, value)
    env_file = tmp_path / "lk.env"  # a file, not os.environ: pymilvus reads MILVUS_URI itself
    env_file.write_text(
        f"DATABASE_URL={database_url}\nMILVUS_URI={tmp_path / 'milvus.db'}\n"
        f"LOREKEEPER_DATA_DIR={tmp_path}\nCHUNK_SIZE=300\nCHUNK_OVERLAP=50\n"
    )
    monkeypatch.setattr("bot.runtime.build", functools.partial(build, embedder=embedder))
    return Lorekeeper(env_file, database_url, tmp_path, capsys)


@pytest.fixture
async def corpus(lorekeeper: Lorekeeper) -> dict[str, Path]:
    """CORPUS written under docs/NAMESPACE/ and indexed with `lorekeeper ingest`; file paths."""
    paths = {}
    for namespace, files in CORPUS.items():
        for name, text in files.items():
            paths[name] = lorekeeper.write(f"docs/{namespace}/{name}", text)
        run = await lorekeeper(
            "ingest", str(lorekeeper.tmp_path / "docs" / namespace), "-n", namespace
        )
        assert run.code == 0, run
        assert f"{len(files)} files, " in run.out and ", 0 failed" in run.out, run.out
    return paths
