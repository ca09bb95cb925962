"""Run the Alembic migrations from code (the CLI and the tests use this).

Checking whether a database is up to date needs no Alembic: the head is read from the
migration files' ``revision`` / ``down_revision`` lines and the current revision from the
``alembic_version`` table. Alembic itself (a few hundred milliseconds of imports) is loaded only
to migrate, or when the files don't name one head plainly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
_REVISION = re.compile(r"^revision(?:\s*:\s*[\w\[\]| ]+)?\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision(?:\s*:\s*[\w\[\]| ]+)?\s*=\s*(None|['\"]([^'\"]+)['\"])", re.M)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _in_worker(fn: Callable[[], None]) -> None:
    # env.py runs its own event loop; a worker thread keeps that legal when the caller
    # already has one running.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(fn).result()


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (blocking)."""
    from alembic import command

    _in_worker(lambda: command.upgrade(alembic_config(url), revision))


def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` (blocking)."""
    from alembic import command

    _in_worker(lambda: command.downgrade(alembic_config(url), revision))


def head_revision() -> str | None:
    """The newest migration's revision."""
    declared = _declared_head()
    if declared is not None:
        return declared
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _declared_head() -> str | None:
    """The one revision no migration file names as its ``down_revision``; None when a file
    declares them otherwise (then Alembic reads the files)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN.search(source)
        if revision is None or down is None:
            if path.name != "__init__.py":
                return None
            continue
        revisions.add(revision.group(1))
        if down.group(2):
            parents.add(down.group(2))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    exists = (
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        if engine.dialect.name == "sqlite"
        else "SELECT to_regclass('alembic_version')"
    )
    async with engine.connect() as conn:
        if (await conn.execute(text(exists))).scalar() is None:
            return None
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    if len(rows) > 1:
        raise RuntimeError(f"the database is at several revisions: {[r[0] for r in rows]}")
    return str(rows[0][0]) if rows else None
