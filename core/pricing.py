"""What a model call costs, from a price table kept in configuration.

Prices change, so the defaults below are only a starting point: the composition root may
override them from a JSON setting such as ``{"llama-3.3-70b-versatile": [0.59, 0.79]}``
(USD per million input tokens, USD per million output tokens).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

from core.errors import ConfigError

_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per one million tokens, for prompt (input) and completion (output) tokens."""

    input_per_million: Decimal
    output_per_million: Decimal


# Groq on-demand prices as published late 2025 (USD per 1M tokens, input / output).
# They change: override them in configuration (LOREKEEPER_PRICES or similar), not here.
DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "llama-3.3-70b-versatile": ModelPrice(Decimal("0.59"), Decimal("0.79")),
        "llama-3.1-8b-instant": ModelPrice(Decimal("0.05"), Decimal("0.08")),
        "openai/gpt-oss-120b": ModelPrice(Decimal("0.15"), Decimal("0.75")),
        "openai/gpt-oss-20b": ModelPrice(Decimal("0.10"), Decimal("0.50")),
    }
)


class PriceTable:
    """Model name -> price. Unknown models cost 0; ask :meth:`known` to tell them apart.

    Embeddings run locally, so ``embedding_per_million`` defaults to 0.
    """

    def __init__(
        self,
        prices: Mapping[str, ModelPrice | tuple[Any, Any] | list[Any]],
        *,
        embedding_per_million: Decimal = Decimal(0),
    ) -> None:
        self._prices = {name: _to_price(name, value) for name, value in prices.items()}
        self._embedding = _to_decimal("embedding", embedding_per_million)

    @classmethod
    def default(cls) -> PriceTable:
        """The table of :data:`DEFAULT_PRICES`."""
        return cls(DEFAULT_PRICES)

    @classmethod
    def parse(cls, text: str, *, base: PriceTable | None = None) -> PriceTable:
        """Read ``{"model": [input, output], ...}`` (USD per 1M tokens) from a JSON string.

        ``{"model": {"input": 0.59, "output": 0.79}}`` is accepted too. With ``base`` the
        parsed entries override (and extend) that table. Raises ``ConfigError`` when invalid.
        """
        try:
            data = json.loads(text, parse_float=Decimal, parse_int=Decimal)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"The price table is not valid JSON ({exc.msg}).") from None
        if not isinstance(data, dict):
            raise ConfigError('The price table must be a JSON object: {"model": [in, out]}.')
        parsed = cls(data)
        return base.merged(parsed) if base is not None else parsed

    def merged(self, overrides: PriceTable) -> PriceTable:
        """A new table: this one with ``overrides`` applied on top."""
        table = PriceTable({**self._prices, **overrides._prices})
        table._embedding = self._embedding
        return table

    def known(self, model: str) -> bool:
        """Whether the table has a price for ``model``."""
        return model in self._prices

    def price(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or None when unknown."""
        return self._prices.get(model)

    def models(self) -> Iterator[str]:
        """The model names that have a price."""
        return iter(sorted(self._prices))

    def cost(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        embedding_tokens: int = 0,
    ) -> Decimal:
        """USD for one call; an unknown model costs 0 (see :meth:`known`)."""
        total = Decimal(embedding_tokens) * self._embedding / _MILLION
        price = self._prices.get(model)
        if price is not None:
            total += Decimal(prompt_tokens) * price.input_per_million / _MILLION
            total += Decimal(completion_tokens) * price.output_per_million / _MILLION
        return total

    def __repr__(self) -> str:
        return f"PriceTable({len(self._prices)} models)"


def _to_price(model: str, value: ModelPrice | tuple[Any, Any] | list[Any] | Any) -> ModelPrice:
    if isinstance(value, ModelPrice):
        return value
    if isinstance(value, dict) and {"input", "output"} <= value.keys():
        value = (value["input"], value["output"])
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(f"The price of '{model}' must be [input, output] USD per million tokens.")
    return ModelPrice(_to_decimal(model, value[0]), _to_decimal(model, value[1]))


def _to_decimal(model: str, value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ConfigError(f"The price of '{model}' must be a number.")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"The price of '{model}' must be a number.") from None
    if not number.is_finite() or number < 0:
        raise ConfigError(f"The price of '{model}' must be a non-negative number.")
    return number
