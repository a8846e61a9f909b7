"""Cost computation: client cost, custom prices, the genai-prices table, unknown models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest

from gati.tracing.pricing import (
    CustomPrice,
    PriceBook,
    TokenUsage,
    apply_cost,
    compute_cost,
    price_table_cost,
    provider_id_for,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _table(model: str, **usage: int) -> float:
    """The price straight from genai-prices (the oracle for the table path)."""
    return float(
        genai_prices.calc_price(
            genai_prices.Usage(**usage), model, genai_request_timestamp=NOW
        ).total_price
    )


def test_client_cost_wins_over_everything() -> None:
    book = PriceBook([CustomPrice("gpt-4o", NOW, Decimal(1), Decimal(1))])
    data = {"model": "gpt-4o", "tokens_in": 1000, "tokens_out": 10, "cost": 0.5}
    result = apply_cost(data, at=NOW, book=book)
    assert result is not None and result.source == "client"
    assert data["cost"] == 0.5
    assert data["cost_source"] == "client"


def test_client_cost_zero_is_kept_and_strings_are_read() -> None:
    assert compute_cost({"model": "gpt-4o", "tokens_in": 5, "cost": 0}, at=NOW).cost == 0.0  # type: ignore[union-attr]
    result = compute_cost({"cost": "0.25"}, at=NOW)
    assert result is not None and (result.cost, result.source) == (0.25, "client")


def test_price_table_with_cached_input_tokens() -> None:
    data = {"model": "gpt-4o", "tokens_in": 1000, "tokens_out": 500, "tokens_cache_read": 200}
    result = apply_cost(data, at=NOW)
    assert result is not None and result.source == "price_table"
    expected = _table("gpt-4o", input_tokens=1000, output_tokens=500, cache_read_tokens=200)
    assert data["cost"] == pytest.approx(expected)
    # Cached tokens are cheaper: the same call without cache costs more.
    assert expected < _table("gpt-4o", input_tokens=1000, output_tokens=500)
    # gpt-4o: $2.5 / MTok input, $1.25 cached, $10 output.
    assert data["cost"] == pytest.approx((800 * 2.5 + 200 * 1.25 + 500 * 10) / 1e6)
    assert data["cost_source"] == "price_table"
    assert data["cost_model"] == "gpt-4o"


def test_price_table_with_cache_writes_and_provider() -> None:
    data = {
        "model": "claude-3-5-sonnet-20241022",
        "provider": "anthropic",
        "tokens_in": 700,
        "tokens_out": 500,
        "tokens_cache_read": 200,
        "tokens_cache_creation": 100,
    }
    result = compute_cost(data, at=NOW)
    assert result is not None and result.source == "price_table"
    # $3 input, $0.30 cache read, $3.75 cache write, $15 output per MTok.
    assert result.cost == pytest.approx((400 * 3 + 200 * 0.3 + 100 * 3.75 + 500 * 15) / 1e6)
    assert result.provider == "anthropic"


def test_separately_reported_cache_counts_are_added_to_input() -> None:
    # Anthropic's own API reports input_tokens without the cached ones.
    inclusive = compute_cost(
        {
            "model": "claude-3-5-sonnet",
            "tokens_in": 700,
            "tokens_out": 0,
            "tokens_cache_read": 200,
            "tokens_cache_creation": 100,
        },
        at=NOW,
    )
    exclusive = compute_cost(
        {
            "model": "claude-3-5-sonnet",
            "tokens_in": 50,
            "tokens_out": 0,
            "tokens_cache_read": 500,
            "tokens_cache_creation": 150,
        },
        at=NOW,
    )
    assert inclusive is not None and exclusive is not None
    assert exclusive.cost == pytest.approx((50 * 3 + 500 * 0.3 + 150 * 3.75) / 1e6)


def test_reasoning_tokens_are_part_of_output() -> None:
    with_reasoning = compute_cost(
        {"model": "o3-mini", "tokens_in": 1000, "tokens_out": 500, "tokens_reasoning": 300},
        at=NOW,
    )
    assert with_reasoning is not None
    assert with_reasoning.cost == pytest.approx(
        _table("o3-mini", input_tokens=1000, output_tokens=500, output_reasoning_tokens=300)
    )
    # Reported on top of the output (more reasoning than output): added up.
    separate = TokenUsage(input=10, output=5, reasoning=300).normalized()
    assert separate.output == 305


def test_router_style_model_names_and_provider_aliases() -> None:
    result = compute_cost(
        {"model": "openai/gpt-4o-mini", "tokens_in": 1000, "tokens_out": 100}, at=NOW
    )
    assert result is not None and result.source == "price_table"
    assert result.matched_model == "gpt-4o-mini"
    assert provider_id_for("gcp.vertex_ai") == "google"
    assert provider_id_for("aws.bedrock") == "aws"
    assert provider_id_for("az.ai.openai") == "azure"
    assert provider_id_for("something-else") is None
    # An unmatched provider hint does not prevent the lookup by model name.
    hinted = compute_cost(
        {"model": "gpt-4o-mini", "provider": "my-proxy", "tokens_in": 1000, "tokens_out": 100},
        at=NOW,
    )
    assert hinted is not None and hinted.cost == result.cost


def test_unknown_model_costs_nothing_and_says_so() -> None:
    data = {"model": "acme-llm-9000", "tokens_in": 1000, "tokens_out": 10}
    result = apply_cost(data, at=NOW)
    assert result is not None
    assert (result.source, result.cost, result.model) == ("unknown_model", 0.0, "acme-llm-9000")
    assert data["cost"] == 0.0
    assert data["cost_source"] == "unknown_model"
    assert price_table_cost("acme-llm-9000", TokenUsage(input=1)) is None


def test_nothing_to_price() -> None:
    assert compute_cost({}, at=NOW) is None
    assert compute_cost({"model": "gpt-4o"}, at=NOW) is None  # no tokens
    assert compute_cost({"tokens_in": 5}, at=NOW) is None  # no model
    data: dict = {"model": "gpt-4o", "tokens_in": 0, "tokens_out": 0}
    assert apply_cost(data, at=NOW) is None
    assert "cost_source" not in data


def test_custom_price_applies_from_its_effective_date() -> None:
    book = PriceBook(
        [
            CustomPrice("acme-llm", datetime(2025, 1, 1, tzinfo=UTC), Decimal(1), Decimal(2)),
            CustomPrice("acme-llm", datetime(2025, 5, 1, tzinfo=UTC), Decimal(10), Decimal(20)),
            CustomPrice("acme-llm", datetime(2025, 9, 1, tzinfo=UTC), Decimal(100), Decimal(200)),
        ]
    )
    usage = {"model": "ACME-LLM", "tokens_in": 1_000_000, "tokens_out": 1_000_000}
    before = compute_cost(usage, at=datetime(2024, 12, 31, tzinfo=UTC), book=book)
    assert before is not None and before.source == "unknown_model"
    january = compute_cost(usage, at=datetime(2025, 2, 1, tzinfo=UTC), book=book)
    assert january is not None and (january.source, january.cost) == ("custom", 3.0)
    june = compute_cost(usage, at=NOW, book=book)
    assert june is not None and june.cost == 30.0
    # Naive datetimes are UTC.
    later = compute_cost(usage, at=datetime(2025, 10, 1), book=book)
    assert later is not None and later.cost == 300.0


def test_custom_price_overrides_the_table_and_prices_cache_and_reasoning() -> None:
    book = PriceBook(
        [
            CustomPrice(
                "gpt-4o",
                datetime(2020, 1, 1, tzinfo=UTC),
                input_per_mtok=Decimal(2),
                output_per_mtok=Decimal(8),
                cache_read_per_mtok=Decimal("0.5"),
                cache_write_per_mtok=Decimal(4),
                reasoning_per_mtok=Decimal(16),
            )
        ]
    )
    data = {
        "model": "gpt-4o",
        "tokens_in": 1000,
        "tokens_out": 100,
        "tokens_cache_read": 200,
        "tokens_cache_creation": 100,
        "tokens_reasoning": 40,
    }
    result = apply_cost(data, at=NOW, book=book)
    assert result is not None and result.source == "custom"
    expected = (700 * 2 + 200 * 0.5 + 100 * 4 + 60 * 8 + 40 * 16) / 1e6
    assert data["cost"] == pytest.approx(expected)
    assert data["cost_source"] == "custom"


def test_custom_price_defaults_cache_and_reasoning_to_input_and_output() -> None:
    price = CustomPrice("m", NOW, Decimal(3), Decimal(6))
    usage = TokenUsage(input=100, output=50, cache_read=30, reasoning=20)
    assert price.cost(usage) == Decimal(100 * 3 + 50 * 6) / Decimal(1_000_000)


def test_custom_prefix_patterns_and_providers() -> None:
    book = PriceBook(
        [
            CustomPrice("acme-*", NOW, Decimal(1), Decimal(1)),
            CustomPrice("acme-large-*", NOW, Decimal(5), Decimal(5)),
            CustomPrice("acme-exact", NOW, Decimal(9), Decimal(9)),
            CustomPrice("shared", NOW, Decimal(7), Decimal(7), provider="bedrock"),
        ]
    )
    assert book.find("acme-small-1", NOW).input_per_mtok == 1  # type: ignore[union-attr]
    assert book.find("acme-large-2", NOW).input_per_mtok == 5  # type: ignore[union-attr]
    assert book.find("acme-exact", NOW).input_per_mtok == 9  # type: ignore[union-attr]
    assert book.find("proxy/acme-exact", NOW).input_per_mtok == 9  # type: ignore[union-attr]
    assert book.find("shared", NOW, "bedrock") is not None
    assert book.find("shared", NOW, "openai") is None
    assert book.find("shared", NOW) is not None  # no provider on the event: still matches
    assert book.find("other", NOW) is None
    assert not PriceBook()


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "o3-mini",
        "claude-3-5-sonnet",
        "claude-sonnet-4-20250514",
        "gemini-2.5-pro",  # tiered (above 200k input tokens): priced by calc_price each time
        "deepseek-chat",
    ],
)
def test_table_costs_equal_genai_prices_exactly(model: str) -> None:
    import random

    rng = random.Random(model)
    for _ in range(60):
        input_tokens = rng.randint(0, 400_000)
        cache_read = rng.randint(0, input_tokens // 2)
        cache_write = rng.randint(0, input_tokens // 4)
        output_tokens = rng.randint(0, 8_000)
        reasoning = rng.randint(0, output_tokens)
        ours = price_table_cost(
            model,
            TokenUsage(input_tokens, output_tokens, cache_read, cache_write, reasoning),
            at=NOW,
        )
        reference = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read or None,
                cache_write_tokens=cache_write or None,
                output_reasoning_tokens=reasoning or None,
            ),
            model,
            genai_request_timestamp=NOW,
        ).total_price
        assert ours is not None
        assert ours.cost == reference
