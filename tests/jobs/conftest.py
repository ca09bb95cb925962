from __future__ import annotations

import pytest

from tests.jobs.data import ensure_fk_indexes


@pytest.fixture
async def indexed_engine(engine):
    """The test database with the foreign-key indexes bulk message deletion needs."""
    await ensure_fk_indexes(engine)
    return engine
