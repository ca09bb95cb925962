"""`lorekeeper db backup` copies a live SQLite database: online, consistent, point in time.

A writer thread commits batches of rows into the migrated schema (WAL mode, as the bot runs it)
while the real CLI, in its own process, takes the backup. The copy must pass PRAGMA
integrity_check, hold only whole batches, numbered without gaps, and be no older than what was
committed before the backup started nor newer than what was committed when it finished; the
writer must never have been blocked into an error.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from core.db import migrate

BATCH = 5  # rows per transaction
PREFILL = 60_000  # rows, so the file is several MB and the copy takes real time


def _row(event_id: str) -> tuple[str, str, str, str]:
    return (uuid.uuid4().hex, "deploytest", event_id, datetime.now(UTC).isoformat(sep=" "))


INSERT = "INSERT INTO processed_events (id, platform, event_id, received_at) VALUES (?, ?, ?, ?)"


class Writer(threading.Thread):
    """Commits batch 0, 1, 2, ... of BATCH rows each until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.committed = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        db.execute("PRAGMA busy_timeout=10000")
        try:
            while not self.stop.is_set():
                db.execute("BEGIN IMMEDIATE")
                rows = [_row(f"b{self.committed:07d}-{i}") for i in range(BATCH)]
                db.executemany(INSERT, rows)
                db.execute("COMMIT")
                self.committed += 1
                time.sleep(0.001)
        except BaseException as exc:  # reported by the test, not swallowed
            self.errors.append(exc)
        finally:
            db.close()

    def wait_for(self, batches: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.committed < batches and not self.errors:
            assert time.monotonic() < deadline, "writer made no progress"
            time.sleep(0.01)


def _prefill(path: Path) -> None:
    db = sqlite3.connect(path)
    with db:
        db.executemany(INSERT, (_row(f"pre-{i}") for i in range(PREFILL)))
    db.close()


def _backup(db: Path, target: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
    cli = Path(sys.executable).with_name("lorekeeper")
    return subprocess.run(
        [str(cli), "--env-file", os.devnull, "db", "backup", str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_backup_of_a_database_being_written_is_a_consistent_point_in_time(tmp_path):
    db = tmp_path / "live.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{db}")
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    _prefill(db)
    writer = Writer(db)
    writer.start()
    try:
        writer.wait_for(20)
        before = writer.committed
        done = _backup(db, tmp_path / "copies" / "backup.db")
        after = writer.committed
        writer.wait_for(after + 20)  # still writing after the backup: never blocked for good
    finally:
        writer.stop.set()
        writer.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert writer.errors == []
    assert after > before  # the backup ran while transactions kept committing

    target = tmp_path / "copies" / "backup.db"
    assert sorted(p.name for p in target.parent.iterdir()) == ["backup.db"]  # no .partial left
    copy = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert copy.execute("SELECT version_num FROM alembic_version").fetchone() == (
        migrate.head_revision(),
    )
    prefilled = copy.execute("SELECT count(*) FROM processed_events WHERE event_id LIKE 'pre-%'")
    assert prefilled.fetchone() == (PREFILL,)
    rows = copy.execute(
        "SELECT substr(event_id, 2, 7), count(*) FROM processed_events"
        " WHERE event_id LIKE 'b%' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    copy.close()
    batches = [int(b) for b, _ in rows]
    assert batches == list(range(len(batches)))  # a prefix: nothing later without the earlier
    assert {n for _, n in rows} <= {BATCH}  # whole transactions only
    assert before <= len(batches) <= after
