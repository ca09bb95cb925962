"""The price table: defaults, costs, unknown models and the JSON override."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ConfigError
from core.pricing import DEFAULT_PRICES, ModelPrice, PriceTable


def test_default_prices_cover_the_groq_production_models() -> None:
    table = PriceTable.default()
    assert table.price("llama-3.3-70b-versatile") == ModelPrice(Decimal("0.59"), Decimal("0.79"))
    assert table.price("llama-3.1-8b-instant") == ModelPrice(Decimal("0.05"), Decimal("0.08"))
    assert table.price("openai/gpt-oss-120b") == ModelPrice(Decimal("0.15"), Decimal("0.75"))
    assert table.price("openai/gpt-oss-20b") == ModelPrice(Decimal("0.10"), Decimal("0.50"))
    assert set(table.models()) == set(DEFAULT_PRICES)


def test_cost_is_exact_decimal() -> None:
    table = PriceTable.default()
    cost = table.cost("llama-3.3-70b-versatile", 1_000_000, 500_000)
    assert cost == Decimal("0.59") + Decimal("0.395")
    assert table.cost("llama-3.1-8b-instant", 1234, 567) == Decimal("0.00010706")
    assert isinstance(cost, Decimal)


def test_unknown_model_costs_nothing_and_is_flagged() -> None:
    table = PriceTable.default()
    assert table.cost("mystery-model", 10_000, 10_000) == Decimal(0)
    assert not table.known("mystery-model")
    assert table.known("llama-3.3-70b-versatile")
    assert table.price("mystery-model") is None


def test_local_embeddings_are_free_unless_priced() -> None:
    assert PriceTable.default().cost("llama-3.1-8b-instant", 0, 0, embedding_tokens=10**6) == 0
    paid = PriceTable({}, embedding_per_million=Decimal("0.02"))
    assert paid.cost("x", 0, 0, embedding_tokens=500_000) == Decimal("0.01")


def test_parse_reads_the_env_override() -> None:
    table = PriceTable.parse('{"my-model": [0.59, 0.79], "other": {"input": 1, "output": 2}}')
    assert table.price("my-model") == ModelPrice(Decimal("0.59"), Decimal("0.79"))
    assert table.cost("other", 1_000_000, 1_000_000) == Decimal(3)
    assert not table.known("llama-3.3-70b-versatile")


def test_parse_over_a_base_overrides_and_keeps_the_rest() -> None:
    table = PriceTable.parse('{"llama-3.3-70b-versatile": [1, 2]}', base=PriceTable.default())
    assert table.price("llama-3.3-70b-versatile") == ModelPrice(Decimal(1), Decimal(2))
    assert table.known("openai/gpt-oss-20b")
    assert PriceTable.default().price("llama-3.3-70b-versatile") == ModelPrice(
        Decimal("0.59"), Decimal("0.79")
    )


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"m": [1]}',
        '{"m": [1, 2, 3]}',
        '{"m": ["a", 1]}',
        '{"m": [-1, 1]}',
        '{"m": [true, 1]}',
        '{"m": 0.5}',
        '{"m": [NaN, 1]}',
    ],
)
def test_parse_rejects_invalid_tables(text: str) -> None:
    with pytest.raises(ConfigError):
        PriceTable.parse(text)
