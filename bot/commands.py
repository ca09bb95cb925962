"""CLI command handlers. Each loads settings, builds what it needs, and cleans up."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import sqlite3
from pathlib import Path

from bot.cli import Handler
from bot.settings import load_settings
from core.db import migrate
from core.db.engine import create_engine, parse_database_url
from core.errors import ConfigError


async def db_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    url = settings.database_url
    action = args.db_command
    if action == "upgrade":
        await asyncio.to_thread(migrate.upgrade, url)
        print(f"database at revision {migrate.head_revision()}")
        return 0
    if action == "downgrade":
        await asyncio.to_thread(migrate.downgrade, url, args.revision)
        print(f"database downgraded to {args.revision}")
        return 0
    if action == "current":
        engine = create_engine(url)
        try:
            current = await migrate.current_revision(engine)
        finally:
            await engine.dispose()
        head = migrate.head_revision()
        state = "up to date" if current == head else f"head is {head}: run 'lorekeeper db upgrade'"
        print(f"{current or 'empty (no schema)'} ({state})")
        return 0 if current == head else 3
    if action == "backup":
        return await asyncio.to_thread(_sqlite_backup, url, Path(args.path))
    raise ConfigError(f"unknown db action {action}")


def _sqlite_backup(url: str, target: Path) -> int:
    parsed = parse_database_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        raise ConfigError(
            "db backup copies a SQLite database; for PostgreSQL use pg_dump "
            "(see docs/operations.md)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".partial")
    src = sqlite3.connect(parsed.database)
    try:
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # the online backup API: consistent while writers continue
        finally:
            dst.close()
    finally:
        src.close()
    shutil.move(tmp, target)
    print(f"backed up {parsed.database} to {target}")
    return 0


# Where each command's handler lives: a command imports only what it needs (`namespaces` never
# loads the embedding model's libraries, nor `ask` the Slack and Discord clients).
_MODULES = {
    "db": "bot.commands",
    "ingest": "bot.knowledge_commands",
    "search": "bot.knowledge_commands",
    "namespaces": "bot.knowledge_commands",
    "workspaces": "bot.knowledge_commands",
    "ask": "bot.chat_commands",
    "chat": "bot.chat_commands",
    "demo": "bot.chat_commands",
    "run": "bot.run",
    "usage": "bot.ops_commands",
    "gaps": "bot.gap_commands",
    "jobs": "bot.ops_commands",
    "model": "bot.model_commands",
}


def handler(command: str) -> Handler | None:
    """The handler of ``command`` (its module imported now), or None for an unknown one."""
    module = _MODULES.get(command)
    if module is None:
        return None
    found: Handler = getattr(importlib.import_module(module), f"{command}_command")
    return found
