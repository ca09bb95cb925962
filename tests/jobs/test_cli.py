"""`lorekeeper usage` and `lorekeeper jobs run` through their handlers on a temp SQLite."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.cli import build_parser
from bot.ops_commands import jobs_command, usage_command
from core.db import migrate
from core.db.access import Database
from core.db.engine import create_engine
from core.db.usage import UsageStore
from tests.jobs.data import answers, usage, world


async def test_usage_prints_the_table_and_jobs_run_rollup_takes_a_date(
    tmp_path, monkeypatch, capsys
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lk.db'}"
    for name in ("DATABASE_URL", "MILVUS_URI", "LOREKEEPER_DATA_DIR", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "lk.env"  # a file, not os.environ: pymilvus reads MILVUS_URI itself
    env_file.write_text(
        f"DATABASE_URL={url}\nMILVUS_URI={tmp_path / 'milvus.db'}\nLOREKEEPER_DATA_DIR={tmp_path}\n"
    )
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url)
    database = Database(engine)
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    try:
        w = await world(database)
        first, second = await answers(database, w, 2)
        await UsageStore(database).record_many(
            [
                usage(w, yesterday, prompt_tokens=1234, message_id=first),
                usage(
                    w,
                    yesterday,
                    operation="embedding",
                    message_id=first,
                    prompt_tokens=0,
                    completion_tokens=0,
                ),
                usage(w, now, prompt_tokens=5, message_id=second),
                usage(
                    w,
                    now,
                    operation="embedding",
                    message_id=second,
                    prompt_tokens=0,
                    completion_tokens=0,
                ),
            ]
        )
    finally:
        await engine.dispose()
    env = ["--env-file", str(env_file)]
    parser = build_parser()

    day = yesterday.date().isoformat()
    code = await jobs_command(parser.parse_args([*env, "jobs", "run", "rollup", "--date", day]))
    out = capsys.readouterr().out
    assert code == 0 and "rollup: days=1, rows=2" in out  # chat and embedding

    chart = tmp_path / "usage.png"
    args = parser.parse_args([*env, "usage", "--days", "3", "--by", "user", "--chart", str(chart)])
    assert await usage_command(args) == 0
    out = capsys.readouterr().out
    assert "Usage of all workspaces, last 3 day(s) by user" in out
    ada = next(line for line in out.splitlines() if line.startswith("Ada"))
    assert "1,239" in ada and "2" in ada.split()[1]  # 1234 + 5 prompt tokens, 2 requests
    assert chart.read_bytes().startswith(b"\x89PNG")

    bad = parser.parse_args([*env, "jobs", "run", "rollup", "--date", "yesterday"])
    assert await jobs_command(bad) == 2
