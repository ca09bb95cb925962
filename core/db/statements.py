"""Statements built once and executed with their values as parameters.

Building a statement costs more CPU than sending it (a third of a millisecond per statement on
SQLite), and the statements of a question run on the event loop; each of these is built once
per model, key set and dialect. They are built on the Core tables: an ORM entity would take the
ORM's bulk path, which reports no rowcount.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from core.db.models import Base


def _dialect_module(dialect: str) -> Any:
    return postgresql if dialect == "postgresql" else sqlite


@functools.cache
def insert_ignore(
    dialect: str, model: type[Base], keys: tuple[str, ...], *, returning: bool = False
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for SQLite or PostgreSQL; execute it with
    the row as parameters. The rowcount is 0 when the key existed; with ``returning`` the
    inserted row comes back (none when the key existed)."""
    table = model.__table__
    stmt: Insert = (
        _dialect_module(dialect).insert(table).on_conflict_do_nothing(index_elements=list(keys))
    )
    return stmt.returning(*table.c) if returning else stmt


@functools.cache
def upsert(
    dialect: str,
    model: type[Base],
    keys: tuple[str, ...],
    *,
    update: tuple[str, ...],
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET`` the ``update`` columns to the new row's."""
    stmt = _dialect_module(dialect).insert(model.__table__)
    done: Insert = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}
    )
    return done


@functools.cache
def select_by(model: type[Base], keys: tuple[str, ...]) -> Select[Any]:
    """``SELECT`` the model's columns ``WHERE key = :key AND ...``: Core rows, whose attributes
    are named as the model's."""
    table = model.__table__
    return select(table).where(*(table.c[k] == bindparam(k) for k in keys))
