"""Usage reports read daily_usage for rolled-up days plus the raw rows after them."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import numpy as np
from matplotlib.image import imread
from sqlalchemy import delete

from core.db.models import TokenUsage
from core.db.usage import UsageStore
from core.jobs.rollup import UsageRollup
from core.reports import BAR_COLORS, ReportService, UsageReport, render_chart, window
from tests.jobs.data import NOW, answers, usage, world


async def test_report_combines_rollups_and_todays_raw_rows(database) -> None:
    w = await world(database)
    other = await w.ids.workspace("slack", "T2")
    yesterday = NOW - timedelta(days=1)
    first, second, third = await answers(database, w, 3)
    await UsageStore(database).record_many(
        [
            usage(w, yesterday, prompt_tokens=100, cost=Decimal("0.5"), message_id=first),
            _query(w, yesterday, first, user_id=None),
            usage(w, NOW - timedelta(hours=1), prompt_tokens=7, cost=Decimal("0.25")),
            _query(w, NOW - timedelta(hours=1), second, embedding_tokens=0),
            usage(w, NOW - timedelta(days=10), prompt_tokens=999),  # outside the window
        ]
    )
    await UsageStore(database).record(
        _query(w, yesterday, third, workspace_id=other.id, user_id=None, channel_id=None)
    )
    await UsageRollup(database, clock=lambda: NOW).backfill()
    # proof that rolled-up days come from daily_usage: the raw rows of yesterday are gone
    async with database.session() as db, db.begin():
        start = NOW.replace(hour=0) - timedelta(days=1)
        await db.execute(
            delete(TokenUsage).where(
                TokenUsage.created_at >= start, TokenUsage.created_at < NOW.replace(hour=0)
            )
        )
    reports = ReportService(database)
    since, until = window("7d", NOW)

    by_day = await reports.usage(w.workspace, since=since, until=until, by="day")
    assert [(r.key, r.requests, r.prompt_tokens) for r in by_day.rows] == [
        ("2025-06-14", 1, 100),
        ("2025-06-15", 1, 7),
    ]
    assert by_day.total.cost == Decimal("0.75") and by_day.total.embedding_tokens == 40

    by_user = await reports.usage(w.workspace, since=since, until=until, by="user")
    assert [(r.key, r.tokens) for r in by_user.rows] == [("Ada", 147), ("(none)", 40)]
    by_model = await reports.usage(w.workspace, since=since, until=until, by="model")
    assert {r.key for r in by_model.rows} == {"llama", "minilm"}
    everyone = await reports.usage(None, since=since, until=until, by="day")
    assert everyone.total.requests == 3
    table = by_user.table()
    assert "Ada" in table and "total" in table.splitlines()[-1]
    assert await reports.find_workspace("T2") == other.id
    assert await reports.find_workspace("slack:T1") == w.workspace
    assert await reports.find_workspace("nope") is None


def _query(w, when, message_id, **values):
    """The query embedding of an answered question (what makes it a request)."""
    base = {
        "operation": "embedding",
        "model": "minilm",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "embedding_tokens": 40,
        "cost": Decimal(0),
        "message_id": message_id,
    }
    return usage(w, when, **(base | values))


async def test_every_answer_is_a_request_and_operations_are_broken_out(database) -> None:
    """An extractive answer (query embedding only) counts like an LLM one (embedding,
    condensation, generation); an ingested file is a call, never a request."""
    w = await world(database)
    extractive, llm = await answers(database, w, 2)
    when = NOW - timedelta(days=2)
    await UsageStore(database).record_many(
        [
            _query(w, when, extractive),
            _query(w, when, llm),
            usage(w, when, operation="condense", message_id=llm, prompt_tokens=30),
            usage(w, when, message_id=llm),
            usage(w, when, operation="ingest", model="minilm", embedding_tokens=900),
        ]
    )
    reports = ReportService(database)
    since, until = window("7d", NOW)
    before = await reports.usage(w.workspace, since=since, until=until, by="operation")
    await UsageRollup(database, clock=lambda: NOW).backfill()
    for by in ("day", "user", "channel", "model", "operation"):  # rolled up: the same numbers
        report = await reports.usage(w.workspace, since=since, until=until, by=by)
        assert report.total.requests == (5 if by == "operation" else 2), by
    after = await reports.usage(w.workspace, since=since, until=until, by="operation")
    assert after == before
    assert {r.key: r.requests for r in after.rows} == {
        "embedding": 2,
        "condense": 1,
        "chat": 1,
        "ingest": 1,
    }
    assert after.table().split()[1] == "calls"
    assert {r.key: r.embedding_tokens for r in after.rows}["ingest"] == 900


async def test_users_and_channels_show_by_name_and_ids_on_request(database) -> None:
    w = await world(database)
    (message,) = await answers(database, w, 1)
    unnamed = await w.ids.user(w.workspace, "U9")
    await UsageStore(database).record_many(
        [_query(w, NOW, message), _query(w, NOW, None, user_id=unnamed.id)]
    )
    reports = ReportService(database)
    since, until = window("today", NOW)
    by_user = await reports.usage(w.workspace, since=since, until=until, by="user")
    assert {r.key for r in by_user.rows} == {"Ada", "U9"}  # never named: its id
    by_channel = await reports.usage(w.workspace, since=since, until=until, by="channel")
    assert [r.key for r in by_channel.rows] == ["#general"]
    with_ids = await reports.usage(w.workspace, since=since, until=until, by="user", ids=True)
    assert {r.key for r in with_ids.rows} == {"Ada (U1)", "U9"}
    # a person renamed on the platform shows by the new name
    await w.ids.user(w.workspace, "U1", display_name="Ada L.")
    renamed = await reports.usage(w.workspace, since=since, until=until, by="user")
    assert {r.key for r in renamed.rows} == {"Ada L.", "U9"}


def _has_color(pixels, hex_color: str) -> int:
    rgb = np.array([int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return int((np.abs(pixels[:, :, :3] - rgb).max(axis=2) < 0.02).sum())


async def test_chart_is_a_png_with_one_bar_per_row(database) -> None:
    w = await world(database)
    await UsageStore(database).record_many(
        [usage(w, NOW - timedelta(days=d), embedding_tokens=50) for d in range(3)]
    )
    reports = ReportService(database)
    since, until = window("7d", NOW)
    report = await reports.usage(w.workspace, since=since, until=until, by="day")
    png = await reports.chart(report)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png), format="png")
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400
    for color in BAR_COLORS:  # prompt, completion and embedding segments are drawn
        assert _has_color(pixels, color) > 200
    empty = render_chart(UsageReport(since, until, "day", ()))
    blank = imread(io.BytesIO(empty), format="png")
    assert _has_color(blank, BAR_COLORS[0]) == 0
