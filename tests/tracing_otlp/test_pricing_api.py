"""Cost in the ingest path and /api/pricing, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import genai_prices
import httpx
import pytest

from tests.tracing.helpers import BASE, event


async def ingest(client: httpx.AsyncClient, *events: dict[str, Any], **headers: str) -> None:
    response = await client.post("/api/events", json={"events": list(events)}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["failed"] == 0


async def stored(client: httpx.AsyncClient, run_id: str, **headers: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/runs/{run_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["events"] if isinstance(body, dict) else body  # type: ignore[no-any-return]


async def test_sdk_events_are_priced_from_the_table(client: httpx.AsyncClient) -> None:
    run = str(uuid.uuid4())
    await ingest(
        client,
        event("agent_start", run, at=0),
        event(
            "llm_call",
            run,
            at=1,
            model="claude-3-5-sonnet-20241022",
            provider="anthropic",
            tokens_in=2000,
            tokens_out=400,
            tokens_cache_read=1000,
            tokens_cache_creation=500,
        ),
        event("llm_call", run, at=2, model="gpt-4o-mini", tokens_in=100, tokens_out=10, cost=0.5),
    )
    expected = float(
        genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=2000,
                output_tokens=400,
                cache_read_tokens=1000,
                cache_write_tokens=500,
            ),
            "claude-3-5-sonnet-20241022",
            provider_id="anthropic",
            genai_request_timestamp=BASE,
        ).total_price
    )
    events = {e["data"].get("cost_source"): e for e in await stored(client, run)}
    assert set(events) == {None, "price_table", "client"}
    assert events["price_table"]["data"]["cost"] == pytest.approx(expected)
    assert events["price_table"]["data"]["cost_model"] == "claude-3-5-sonnet"
    assert events["client"]["data"]["cost"] == 0.5
    summary = (await client.get(f"/api/runs/{run}")).json()
    assert summary["total_cost"] == pytest.approx(expected + 0.5)
    agent = (await client.get("/api/agents/my_agent")).json()
    assert agent["total_cost"] == pytest.approx(expected + 0.5)


async def test_unknown_models_are_listed_and_custom_prices_then_apply(
    client: httpx.AsyncClient,
) -> None:
    run = str(uuid.uuid4())
    await ingest(
        client,
        event("llm_call", run, at=1, model="acme-llm-7b", tokens_in=1000, tokens_out=100),
        event("llm_call", run, at=2, model="acme-llm-7b", tokens_in=10, tokens_out=1),
        event("llm_call", run, at=3, model="other-x", provider="acme", tokens_in=5, tokens_out=5),
    )
    before = await stored(client, run)
    assert {e["data"]["cost_source"] for e in before} == {"unknown_model"}
    assert all(e["data"]["cost"] == 0.0 for e in before)
    assert (await client.get(f"/api/runs/{run}")).json()["total_cost"] == 0.0

    unknown = (await client.get("/api/pricing/unknown-models?days=3650")).json()
    assert [(u["model"], u["provider"], u["events"]) for u in unknown] == [
        ("acme-llm-7b", None, 2),
        ("other-x", "acme", 1),
    ]
    assert unknown[0]["has_custom_price"] is False

    created = await client.post(
        "/api/pricing/prices",
        json={
            "model": "ACME-LLM-7B",
            "input_per_mtok": 1.5,
            "output_per_mtok": 6,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    )
    assert created.status_code == 201, created.text
    price = created.json()
    assert price["model"] == "acme-llm-7b"
    assert price["provider"] is None
    duplicate = await client.post(
        "/api/pricing/prices",
        json={
            "model": "acme-llm-7b",
            "input_per_mtok": 9,
            "output_per_mtok": 9,
            "effective_from": "2024-01-01T00:00:00Z",
        },
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "price_exists"

    unknown = (await client.get("/api/pricing/unknown-models?days=3650")).json()
    assert unknown[0]["has_custom_price"] is True

    run2 = str(uuid.uuid4())
    await ingest(
        client, event("llm_call", run2, at=5, model="acme-llm-7b", tokens_in=2000, tokens_out=500)
    )
    [priced] = await stored(client, run2)
    assert priced["data"]["cost_source"] == "custom"
    assert priced["data"]["cost"] == pytest.approx((2000 * 1.5 + 500 * 6) / 1e6)
    assert (await client.get(f"/api/runs/{run2}")).json()["total_cost"] == pytest.approx(0.006)

    listed = (await client.get("/api/pricing/prices")).json()
    assert [p["id"] for p in listed] == [price["id"]]
    assert (await client.delete(f"/api/pricing/prices/{price['id']}")).status_code == 204
    assert (await client.delete(f"/api/pricing/prices/{price['id']}")).status_code == 404
    run3 = str(uuid.uuid4())
    await ingest(client, event("llm_call", run3, at=6, model="acme-llm-7b", tokens_in=1))
    [again] = await stored(client, run3)
    assert again["data"]["cost_source"] == "unknown_model"


async def test_custom_prices_follow_the_event_time(client: httpx.AsyncClient) -> None:
    for effective, input_price in (("2024-11-04T10:30:10Z", 1), ("2024-11-04T10:30:20Z", 2)):
        response = await client.post(
            "/api/pricing/prices",
            json={
                "model": "tiered-*",
                "effective_from": effective,
                "input_per_mtok": input_price,
                "output_per_mtok": 0,
            },
        )
        assert response.status_code == 201
    run = str(uuid.uuid4())
    await ingest(
        client,
        *(
            event("llm_call", run, at=at, model="tiered-v1", tokens_in=1_000_000, seq=at)
            for at in (5, 15, 25)
        ),
    )
    costs = {
        e["data"]["seq"]: (e["data"]["cost"], e["data"]["cost_source"])
        for e in await stored(client, run)
    }
    assert costs == {
        5: (0.0, "unknown_model"),
        15: (1.0, "custom"),
        25: (2.0, "custom"),
    }


async def test_otlp_spans_use_custom_prices(client: httpx.AsyncClient) -> None:
    from tests.tracing_otlp.otlp_samples import JSON

    assert (
        await client.post(
            "/api/pricing/prices",
            json={
                "model": "house-model",
                "provider": "vllm",
                "input_per_mtok": 2,
                "output_per_mtok": 4,
            },
        )
    ).status_code == 201
    trace_id = uuid.uuid4().hex
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "00000000000000aa",
                                "name": "chat",
                                "startTimeUnixNano": "1730716200000000000",
                                "endTimeUnixNano": "1730716201000000000",
                                "attributes": [
                                    {
                                        "key": "gen_ai.operation.name",
                                        "value": {"stringValue": "chat"},
                                    },
                                    {
                                        "key": "gen_ai.provider.name",
                                        "value": {"stringValue": "vllm"},
                                    },
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "house-model"},
                                    },
                                    {
                                        "key": "gen_ai.usage.input_tokens",
                                        "value": {"intValue": "1000"},
                                    },
                                    {
                                        "key": "gen_ai.usage.output_tokens",
                                        "value": {"intValue": "1000"},
                                    },
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert (await client.post("/v1/traces", json=body, headers=JSON)).status_code == 200
    run = (await client.get(f"/api/runs/{trace_id}")).json()
    assert run["total_cost"] == pytest.approx(0.006)
    assert run["status"] == "completed"


async def test_quote(client: httpx.AsyncClient) -> None:
    quote = (
        await client.get(
            "/api/pricing/quote",
            params={
                "model": "gpt-4o",
                "tokens_in": 1000,
                "tokens_out": 500,
                "tokens_cache_read": 200,
            },
        )
    ).json()
    assert quote["cost_source"] == "price_table"
    assert quote["cost"] == pytest.approx((800 * 2.5 + 200 * 1.25 + 500 * 10) / 1e6)
    unknown = (
        await client.get("/api/pricing/quote", params={"model": "nope-1", "tokens_in": 5})
    ).json()
    assert (unknown["cost_source"], unknown["cost"]) == ("unknown_model", 0.0)


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "input_per_mtok": -1, "output_per_mtok": 1},
        {"model": "*", "input_per_mtok": 1, "output_per_mtok": 1},
        {"model": "m", "input_per_mtok": 1},
        {"model": "", "input_per_mtok": 1, "output_per_mtok": 1},
    ],
)
async def test_invalid_prices_are_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/api/pricing/prices", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"


async def test_pricing_is_scoped_to_projects(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    production_settings: dict[str, Any],
) -> None:
    alpha = await make_project("alpha")
    beta = await make_project("beta")
    as_alpha = {"Authorization": f"Bearer {alpha['secret_key']}"}
    as_beta = {"Authorization": f"Bearer {beta['secret_key']}"}
    price = {"model": "secret-model", "input_per_mtok": 1, "output_per_mtok": 1}
    async with make_app(**production_settings) as app:
        assert (await app.post("/api/pricing/prices", json=price)).status_code == 401
        public = await app.post(
            "/api/pricing/prices", json=price, headers={"X-API-Key": alpha["public_key"]}
        )
        assert public.status_code == 403
        created = await app.post("/api/pricing/prices", json=price, headers=as_alpha)
        assert created.status_code == 201
        price_id = created.json()["id"]
        wrong = await app.post(
            f"/api/pricing/prices?project={alpha['slug']}", json=price, headers=as_beta
        )
        assert wrong.status_code == 404
        assert (await app.get("/api/pricing/prices", headers=as_beta)).json() == []
        assert len((await app.get("/api/pricing/prices", headers=as_alpha)).json()) == 1
        assert (
            await app.delete(f"/api/pricing/prices/{price_id}", headers=as_beta)
        ).status_code == 404

        # The price applies to alpha's events only.
        run = str(uuid.uuid4())
        for headers in (as_alpha, as_beta):
            await ingest(
                app,
                event("llm_call", run, model="secret-model", tokens_in=1_000_000),
                **headers,
            )
        [in_alpha] = await stored(app, run, **as_alpha)
        [in_beta] = await stored(app, run, **as_beta)
        assert (in_alpha["data"]["cost_source"], in_alpha["data"]["cost"]) == ("custom", 1.0)
        assert (in_beta["data"]["cost_source"], in_beta["data"]["cost"]) == ("unknown_model", 0.0)
        unknown_beta = (
            await app.get("/api/pricing/unknown-models?days=3650", headers=as_beta)
        ).json()
        assert [u["model"] for u in unknown_beta] == ["secret-model"]
        assert (
            await app.get("/api/pricing/unknown-models?days=3650", headers=as_alpha)
        ).json() == []
