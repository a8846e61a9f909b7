"""Cost of an LLM event from its model and token counts.

Order of precedence (the first that applies wins, and ``data.cost_source`` records which):

1. ``client``        — the event already carries ``data.cost``: it is kept as sent.
2. ``custom``        — the project has its own price for the model, effective at the event's
                       time (:class:`PriceBook`, loaded from the database by the caller).
3. ``price_table``   — the ``genai-prices`` package knows the model (cached-input, cache-write
                       and reasoning tokens priced where its table has them).
4. ``unknown_model`` — nobody knows the model: the cost is 0 and the model is listed so that
                       a user can add a custom price.

Token conventions (OpenTelemetry GenAI): ``tokens_in`` *includes* cache reads and cache
writes, ``tokens_out`` *includes* reasoning tokens. A client that reports them separately
(cache counts larger than ``tokens_in``, reasoning larger than ``tokens_out``) is recognised
and its counts are added up before pricing.

This module is pure: no I/O, no database. Prices are ``Decimal`` per million tokens.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

import genai_prices
from genai_prices.types import TieredPrices

from gati.tracing.bounds import MAX_COST, MAX_TOKENS, TOKEN_KEYS

__all__ = [
    "TOKEN_KEYS",
    "CostResult",
    "CostSource",
    "CustomPrice",
    "PriceBook",
    "TablePrice",
    "TokenUsage",
    "apply_cost",
    "compute_cost",
    "normalize_model_name",
    "price_table_cost",
    "provider_id_for",
]

CostSource = Literal["client", "custom", "price_table", "unknown_model"]
COST_SOURCES: tuple[CostSource, ...] = ("client", "custom", "price_table", "unknown_model")

_MILLION = Decimal(1_000_000)


# --------------------------------------------------------------------------------------
# Token usage
# --------------------------------------------------------------------------------------


def _count(value: Any) -> int:
    """A token count: 0 for anything that is not one (events with a number out of
    ``0..MAX_TOKENS`` are refused before pricing; a numeric string out of range counts 0)."""
    if value is None or isinstance(value, bool):
        return 0
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return 0
    else:
        return 0
    return int(number) if 0 <= number <= MAX_TOKENS else 0  # NaN: 0 too


def _first_count(data: Mapping[str, Any], keys: tuple[str, ...]) -> int:
    for key in keys:
        value = data.get(key)
        if value is not None:
            return _count(value)
    return 0


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts of one LLM call, in the inclusive convention (see module docs)."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> TokenUsage | None:
        """From an event's ``data`` (``tokens_in``, ``tokens_out``, ``tokens_cache_read``,
        ``tokens_cache_creation``, ``tokens_reasoning`` or the aliases in ``TOKEN_KEYS``);
        ``None`` if it has no counts."""
        usage = cls(
            input=_first_count(data, TOKEN_KEYS["input"]),
            output=_first_count(data, TOKEN_KEYS["output"]),
            cache_read=_first_count(data, TOKEN_KEYS["cache_read"]),
            cache_write=_first_count(data, TOKEN_KEYS["cache_write"]),
            reasoning=_first_count(data, TOKEN_KEYS["reasoning"]),
        )
        if not (usage.input or usage.output or usage.cache_read or usage.cache_write):
            return None
        return usage.normalized()

    def normalized(self) -> TokenUsage:
        """Fold separately-reported cache / reasoning counts into input / output."""
        input_tokens = self.input
        if self.cache_read + self.cache_write > input_tokens:
            input_tokens += self.cache_read + self.cache_write
        output_tokens = self.output
        if self.reasoning > output_tokens:
            output_tokens += self.reasoning
        if input_tokens == self.input and output_tokens == self.output:
            return self
        return TokenUsage(
            input=input_tokens,
            output=output_tokens,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
            reasoning=self.reasoning,
        )

    def as_key(self) -> tuple[int, int, int, int, int]:
        return (self.input, self.output, self.cache_read, self.cache_write, self.reasoning)


# --------------------------------------------------------------------------------------
# Model names and providers
# --------------------------------------------------------------------------------------


def normalize_model_name(model: str) -> str:
    return model.strip().lower()


# OpenTelemetry ``gen_ai.provider.name`` / ``gen_ai.system`` values (and common spellings)
# → ``genai-prices`` provider ids.
_PROVIDER_ALIASES = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "azure_openai": "azure",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "google": "google",
    "gemini": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "aws.bedrock": "aws",
    "aws_bedrock": "aws",
    "bedrock": "aws",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "deepseek": "deepseek",
    "groq": "groq",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "together": "together",
    "together_ai": "together",
    "fireworks": "fireworks",
    "fireworks_ai": "fireworks",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
    "moonshotai": "moonshotai",
}


def provider_id_for(provider: str | None) -> str | None:
    """A ``genai-prices`` provider id for an OpenTelemetry provider name, if one matches."""
    if not provider:
        return None
    return _PROVIDER_ALIASES.get(provider.strip().lower())


# --------------------------------------------------------------------------------------
# Custom (per-project) prices
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CustomPrice:
    """A project's own price for a model, from ``effective_from`` on (per million tokens).

    ``model`` is matched case-insensitively; a trailing ``*`` makes it a prefix
    (``my-finetune-*``). Cache and reasoning prices default to the input / output price.
    ``provider``, when set, restricts the price to events of that provider.
    """

    model: str
    effective_from: datetime
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    reasoning_per_mtok: Decimal | None = None
    provider: str | None = None

    def cost(self, usage: TokenUsage) -> Decimal:
        cache_read_price = self.cache_read_per_mtok
        if cache_read_price is None:
            cache_read_price = self.input_per_mtok
        cache_write_price = self.cache_write_per_mtok
        if cache_write_price is None:
            cache_write_price = self.input_per_mtok
        reasoning_price = self.reasoning_per_mtok
        if reasoning_price is None:
            reasoning_price = self.output_per_mtok
        cached = min(usage.cache_read + usage.cache_write, usage.input)
        cache_read = min(usage.cache_read, cached)
        cache_write = cached - cache_read
        reasoning = min(usage.reasoning, usage.output)
        total = (
            (usage.input - cached) * self.input_per_mtok
            + cache_read * cache_read_price
            + cache_write * cache_write_price
            + (usage.output - reasoning) * self.output_per_mtok
            + reasoning * reasoning_price
        )
        return total / _MILLION


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class PriceBook:
    """The custom prices of one project, searchable by model, provider and time."""

    __slots__ = ("_exact", "_prefixes")

    def __init__(self, prices: Iterable[CustomPrice] = ()) -> None:
        self._exact: dict[str, list[CustomPrice]] = {}
        self._prefixes: list[tuple[str, list[CustomPrice]]] = []
        prefixes: dict[str, list[CustomPrice]] = {}
        for price in prices:
            name = normalize_model_name(price.model)
            if name.endswith("*"):
                prefixes.setdefault(name[:-1], []).append(price)
            else:
                self._exact.setdefault(name, []).append(price)
        for group in self._exact.values():
            group.sort(key=lambda p: _aware(p.effective_from), reverse=True)
        for prefix, group in prefixes.items():
            group.sort(key=lambda p: _aware(p.effective_from), reverse=True)
            self._prefixes.append((prefix, group))
        # Longest prefix first: the most specific pattern wins.
        self._prefixes.sort(key=lambda item: len(item[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._exact or self._prefixes)

    def find(self, model: str, at: datetime, provider: str | None = None) -> CustomPrice | None:
        """The price in effect at ``at`` for ``model`` (exact name before prefix patterns)."""
        if not self:
            return None
        at = _aware(at)
        name = normalize_model_name(model)
        candidates = [name]
        if "/" in name:  # "openai/gpt-4o" (router style) also matches "gpt-4o"
            candidates.append(name.rsplit("/", 1)[1])
        for candidate in candidates:
            hit = self._pick(self._exact.get(candidate), at, provider)
            if hit is not None:
                return hit
        for candidate in candidates:
            for prefix, group in self._prefixes:
                if candidate.startswith(prefix):
                    hit = self._pick(group, at, provider)
                    if hit is not None:
                        return hit
        return None

    @staticmethod
    def _pick(
        group: list[CustomPrice] | None, at: datetime, provider: str | None
    ) -> CustomPrice | None:
        if not group:
            return None
        wanted = provider.strip().lower() if provider else None
        for price in group:  # newest first
            if _aware(price.effective_from) > at:
                continue
            if price.provider and wanted and price.provider.strip().lower() != wanted:
                continue
            return price
        return None


# --------------------------------------------------------------------------------------
# The maintained price table (genai-prices)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TablePrice:
    cost: Decimal
    provider_id: str
    model_id: str


def price_table_cost(
    model: str, usage: TokenUsage, *, provider: str | None = None, at: datetime | None = None
) -> TablePrice | None:
    """Cost from the ``genai-prices`` table, or ``None`` when the table does not know the model.

    The table lookup is cached per model, provider and minute (misses too); see ``_Rates``.
    """
    moment = _aware(at) if at is not None else datetime.now(UTC)
    minute = moment.replace(second=0, microsecond=0)
    return _table_cost_cached(model.strip(), provider_id_for(provider), minute, usage.as_key())


@lru_cache(maxsize=8192)
def _unknown(model: str, provider_id: str | None) -> bool:
    """Whether the table has no model of this name (cached per name and provider)."""
    for ref, pid in _lookup_candidates(model, provider_id):
        try:
            genai_prices.calc_price(genai_prices.Usage(input_tokens=1), ref, provider_id=pid)
        except LookupError:
            continue
        except Exception:  # a model the table knows but cannot price this way
            return False
        return False
    return True


def _lookup_candidates(model: str, provider_id: str | None) -> list[tuple[str, str | None]]:
    candidates: list[tuple[str, str | None]] = []
    if provider_id:
        candidates.append((model, provider_id))
    candidates.append((model, None))
    if "/" in model:
        prefix, _, rest = model.rpartition("/")
        prefix_provider = provider_id_for(prefix.rsplit("/", 1)[-1])
        if prefix_provider:
            candidates.append((rest, prefix_provider))
        candidates.append((rest, None))
    return candidates


@dataclass(frozen=True, slots=True)
class _Rates:
    """How one table model is priced at one minute.

    ``linear`` = (per-request, input, cache-read delta, cache-write delta, output, reasoning
    delta) in USD per million tokens, measured with ``genai_prices.calc_price`` itself on unit
    usages. Without tiers a price is linear in the counts, so a cost is then a dot product
    (about 2 µs instead of ~100 µs per ``calc_price`` call). Tiered models (``linear`` is
    ``None``) are priced by ``calc_price`` every time.
    """

    ref: str
    lookup_provider: str | None
    provider_id: str
    model_id: str
    linear: tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal] | None


def _calc(ref: str, provider_id: str | None, minute: datetime, **usage: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return genai_prices.calc_price(
            genai_prices.Usage(**usage),
            ref,
            provider_id=provider_id,
            genai_request_timestamp=minute,
        )


@lru_cache(maxsize=4096)
def _rates(model: str, provider_id: str | None, minute: datetime) -> _Rates | None:
    if not model or _unknown(model, provider_id):
        return None
    for ref, pid in _lookup_candidates(model, provider_id):
        try:
            base = _calc(ref, pid, minute)
        except LookupError:
            continue
        tiered = any(isinstance(v, TieredPrices) for v in vars(base.model_price).values())
        linear = None
        if not tiered:
            m = 1_000_000
            c0 = base.total_price
            g_in = _calc(ref, pid, minute, input_tokens=m).total_price - c0
            g_out = _calc(ref, pid, minute, output_tokens=m).total_price - c0
            linear = (
                c0,
                g_in,
                _calc(ref, pid, minute, input_tokens=m, cache_read_tokens=m).total_price
                - c0
                - g_in,
                _calc(ref, pid, minute, input_tokens=m, cache_write_tokens=m).total_price
                - c0
                - g_in,
                g_out,
                _calc(ref, pid, minute, output_tokens=m, output_reasoning_tokens=m).total_price
                - c0
                - g_out,
            )
        return _Rates(ref, pid, base.provider.id, base.model.id, linear)
    return None


def _table_cost_cached(
    model: str,
    provider_id: str | None,
    minute: datetime,
    counts: tuple[int, int, int, int, int],
) -> TablePrice | None:
    rates = _rates(model, provider_id, minute)
    if rates is None:
        return None
    input_tokens, output_tokens, cache_read, cache_write, reasoning = counts
    if rates.linear is not None:
        c0, g_in, g_read, g_write, g_out, g_reason = rates.linear
        cost = (
            c0
            + (
                input_tokens * g_in
                + cache_read * g_read
                + cache_write * g_write
                + output_tokens * g_out
                + reasoning * g_reason
            )
            / _MILLION
        )
        return TablePrice(cost=cost, provider_id=rates.provider_id, model_id=rates.model_id)
    return _exact_cost(rates, minute, counts)


@lru_cache(maxsize=8192)
def _exact_cost(
    rates: _Rates, minute: datetime, counts: tuple[int, int, int, int, int]
) -> TablePrice | None:
    input_tokens, output_tokens, cache_read, cache_write, reasoning = counts
    usage = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "output_reasoning_tokens": reasoning,
    }
    try:
        result = _calc(
            rates.ref, rates.lookup_provider, minute, **{k: v for k, v in usage.items() if v}
        )
    except ValueError:
        # Counts the table cannot reconcile: price the plain input/output split.
        try:
            result = _calc(
                rates.ref,
                rates.lookup_provider,
                minute,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )
        except (LookupError, ValueError):
            return None
    return TablePrice(
        cost=result.total_price, provider_id=rates.provider_id, model_id=rates.model_id
    )


# --------------------------------------------------------------------------------------
# Applying a cost to an event
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostResult:
    cost: float
    source: CostSource
    model: str | None = None  # the model name as the event gave it
    matched_model: str | None = None  # the table's model id or the custom price's pattern
    provider: str | None = None


def _client_cost(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str | Decimal):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _bounded_cost(value: Decimal) -> float:
    """A computed cost as stored: at most ``MAX_COST``, like a client's (a custom price of
    1e300 per million tokens must not make a total overflow)."""
    number = float(value)  # an enormous Decimal is inf
    return number if number <= MAX_COST else MAX_COST


def compute_cost(
    data: Mapping[str, Any], *, at: datetime, book: PriceBook | None = None
) -> CostResult | None:
    """The cost of one event's ``data``, or ``None`` when there is nothing to price
    (no client cost, and no model with token counts)."""
    model = data.get("model")
    client = _client_cost(data.get("cost"))
    if client is not None:
        return CostResult(
            cost=client, source="client", model=model if isinstance(model, str) else None
        )
    if not isinstance(model, str) or not model.strip():
        return None
    usage = TokenUsage.from_data(data)
    if usage is None:
        return None
    provider = data.get("provider")
    provider = provider if isinstance(provider, str) else None
    if book:
        custom = book.find(model, at, provider)
        if custom is not None:
            return CostResult(
                cost=_bounded_cost(custom.cost(usage)),
                source="custom",
                model=model,
                matched_model=custom.model,
                provider=provider,
            )
    table = price_table_cost(model, usage, provider=provider, at=at)
    if table is not None:
        return CostResult(
            cost=_bounded_cost(table.cost),
            source="price_table",
            model=model,
            matched_model=table.model_id,
            provider=table.provider_id,
        )
    return CostResult(cost=0.0, source="unknown_model", model=model, provider=provider)


def apply_cost(
    data: MutableMapping[str, Any], *, at: datetime, book: PriceBook | None = None
) -> CostResult | None:
    """Fill ``data.cost`` and ``data.cost_source`` in place (see :func:`compute_cost`)."""
    result = compute_cost(data, at=at, book=book)
    if result is None:
        return None
    data["cost"] = result.cost
    data["cost_source"] = result.source
    if result.source in ("custom", "price_table") and result.matched_model:
        data["cost_model"] = result.matched_model
    return result
