"""Shared start-up for CLI commands: settings, schema check, the container or the stores.

The container (``bot.container``, with every service) is imported only by the commands that
build it: a command that needs SQL alone opens ``stores`` and starts in a fraction of the time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from bot import process
from bot.settings import Settings, load_settings
from bot.stores import Stores, open_stores
from core.db import migrate
from core.db.engine import create_engine, parse_database_url
from core.db.records import NamespaceRecord, WorkspaceRecord
from core.errors import ConfigError

if TYPE_CHECKING:
    from bot.container import Container

CONSOLE = "console"
log = logging.getLogger(__name__)


async def prepare_database(settings: Settings) -> None:
    """SQLite is migrated automatically; PostgreSQL must be upgraded explicitly."""
    url = settings.database_url
    sqlite = parse_database_url(url).drivername.startswith("sqlite")
    engine = create_engine(url)
    try:
        current = await migrate.current_revision(engine)
    except OSError as exc:
        raise ConfigError(f"DATABASE_URL: can't connect ({exc.strerror or exc})") from None
    finally:
        await engine.dispose()
    if current == migrate.head_revision():
        return
    if not sqlite:
        raise ConfigError("The database schema is not up to date: run 'lorekeeper db upgrade'.")
    await asyncio.to_thread(migrate.upgrade, url)


async def build(settings: Settings, **options: Any) -> Container:
    """``bot.container.build``, imported on first use (tests replace this one)."""
    from bot.container import build as build_container

    return await build_container(settings, **options)


@asynccontextmanager
async def container(
    env_file: str | None, *, offline_llm: bool = False, load_model: bool = False
) -> AsyncIterator[Container]:
    """Everything, built from the settings; ``load_model`` for a command about to embed."""
    process.quiet_libraries()
    settings = load_settings(env_file)
    await prepare_database(settings)
    built = await build(settings, use_llm_from_settings=not offline_llm, load_model=load_model)
    try:
        yield built
    finally:
        await built.close()


@asynccontextmanager
async def stores(env_file: str | None) -> AsyncIterator[Stores]:
    """The SQL stores alone, for commands that need no embedding model nor vector search."""
    settings = load_settings(env_file)
    await prepare_database(settings)
    opened = open_stores(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def console_workspace(c: Container | Stores, workspace: str = "local") -> WorkspaceRecord:
    return await c.identity.workspace(CONSOLE, workspace, name=workspace)


async def knowledge_owner(c: Container | Stores, workspace: str = "local") -> WorkspaceRecord:
    """Whose namespaces the terminal reads and fills: the organisation's (the CLI fills the
    namespaces Slack and Discord channels bind), or with TENANCY=workspace the terminal
    workspace's own."""
    return await c.organisation.owner(await console_workspace(c, workspace))


async def bind_console_channel(
    c: Container,
    channel: str,
    names: Sequence[str],
    *,
    create: bool = False,
    workspace: str = "local",
) -> list[NamespaceRecord]:
    """Bind the console channel to the named namespaces (creating them when asked)."""
    ws = await console_workspace(c, workspace)
    owner = await knowledge_owner(c, workspace)
    ch = await c.identity.channel(ws.id, channel, name=channel)
    out = []
    for name in names:
        ns = (
            await c.knowledge.ensure_namespace(owner.id, name)
            if create
            else await c.knowledge.namespace(owner.id, name)
        )
        await c.knowledge.bind(ch.id, ns.id)
        out.append(ns)
    return out


async def bind_console_to_all(
    c: Container, channel: str, *, workspace: str = "local"
) -> list[NamespaceRecord]:
    """Bind the console channel to every namespace the workspace has now (`ask` and `chat`
    without ``--namespace``). A workspace without any keeps the channel unbound, so it
    searches the default namespace; bindings of deleted namespaces went with them."""
    ws = await console_workspace(c, workspace)
    owner = await knowledge_owner(c, workspace)
    ch = await c.identity.channel(ws.id, channel, name=channel)
    out = []
    for ns, _ in await c.knowledge.list_namespaces(owner.id):
        try:
            await c.knowledge.bind(ch.id, ns.id)
        except IntegrityError:  # deleted since it was listed (by another process)
            continue
        out.append(ns)
    return out


def read_lines(path: str, what: str) -> list[str]:
    """The non-blank lines of a ``--queries``/``--questions`` file, stripped; a file that
    can't be read is a ``ConfigError`` naming it (the CLI prints it on one line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path}: is a folder, not a file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


async def warm_up_model(container: Container) -> None:
    """Load the embedding model now, in the background, rather than on the first question
    (which would wait seconds for it; `run` starts this after start-up, `chat` while the user
    types the first question), then freeze the heap again (``bot.process.freeze_heap``): the
    model's objects live until exit too."""
    try:
        await container.embedder.embed_query("warm up")
    except Exception:
        log.warning("embedding model warm-up failed; it loads on first use", exc_info=True)
        return
    process.freeze_heap()
