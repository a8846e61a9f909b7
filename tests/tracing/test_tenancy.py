"""Production mode needs keys; a key of project A reads nothing of project B."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.tracing.helpers import event

READ_PATHS = [
    "/api/agents",
    "/api/agents/{agent}",
    "/api/agents/{agent}/runs",
    "/api/agents/{agent}/metrics",
    "/api/runs/{run}",
    "/api/runs/{run}/timeline",
    "/api/runs/{run}/trace",
    "/api/events/{event}/children",
    "/api/metrics/summary",
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_production_requires_credentials(make_app, make_project, production_settings) -> None:  # type: ignore[no-untyped-def]
    project = await make_project("acme")
    async with make_app(**production_settings) as client:
        batch = {"events": [event("llm_call", "p1", cost=1.0, event_id="p1-e1")]}
        r = await client.post("/api/events", json=batch)
        assert r.status_code == 401 and r.json()["error"] == "authentication_required"
        r = await client.post("/api/events", json=batch, headers={"X-API-Key": "sk_wrong"})
        assert r.status_code == 401 and r.json()["error"] == "invalid_key"
        # the public key may ingest but not read
        r = await client.post("/api/events", json=batch, headers=bearer(project["public_key"]))
        assert r.status_code == 200
        r = await client.get("/api/runs/p1", headers=bearer(project["public_key"]))
        assert r.status_code == 403
        assert (await client.get("/api/agents")).status_code == 401
        r = await client.get("/api/runs/p1", headers={"X-API-Key": project["secret_key"]})
        assert r.status_code == 200 and r.json()["event_count"] == 1


@pytest.mark.parametrize("mode", ["local", "production"])
async def test_key_of_a_reads_nothing_of_b(
    make_app, make_project, production_settings, mode: str
) -> None:  # type: ignore[no-untyped-def]
    a = await make_project("tenant-a")
    b = await make_project("tenant-b")
    settings: dict[str, Any] = production_settings if mode == "production" else {}
    async with make_app(**settings) as client:
        for project, tag in ((a, "a"), (b, "b")):
            r = await client.post(
                "/api/events",
                json={
                    "events": [
                        event(
                            "agent_start",
                            f"run-{tag}",
                            agent=f"agent-{tag}",
                            event_id=f"root-{tag}",
                        ),
                        event(
                            "llm_call",
                            f"run-{tag}",
                            agent=f"agent-{tag}",
                            parent_run_id=f"root-{tag}",
                            cost=1,
                        ),
                    ]
                },
                headers=bearer(project["secret_key"]),
            )
            assert r.status_code == 200
        # B's identifiers, read with A's key: nothing.
        values = {"agent": "agent-b", "run": "run-b", "event": "root-b"}
        for path in READ_PATHS:
            r = await client.get(path.format(**values), headers=bearer(a["secret_key"]))
            if r.status_code == 200:
                text = r.text
                assert "agent-b" not in text and "run-b" not in text, (path, text)
            else:
                assert r.status_code == 404, (path, r.status_code)
        summary = (await client.get("/api/metrics/summary", headers=bearer(a["secret_key"]))).json()
        assert summary["total_runs"] == 1
        # naming B's project explicitly with A's key is refused
        r = await client.get(
            "/api/agents", params={"project": b["id"]}, headers=bearer(a["secret_key"])
        )
        assert r.status_code == 404
        r = await client.post(
            "/api/events",
            params={"project": b["slug"]},
            json={"events": [event("x", "intrusion")]},
            headers=bearer(a["secret_key"]),
        )
        assert r.status_code == 404
        # the same ids in two projects do not collide
        r = await client.post(
            "/api/events",
            json={"events": [event("llm_call", "run-b", agent="agent-b", event_id="root-b")]},
            headers=bearer(a["secret_key"]),
        )
        assert r.json()["duplicates"] == 0
        r = await client.get("/api/runs/run-b", headers=bearer(b["secret_key"]))
        assert r.json()["event_count"] == 2


async def test_revoked_key_is_refused(make_app, make_project, db, production_settings) -> None:  # type: ignore[no-untyped-def]
    from gati.auth.deps import KEY_CACHE_SECONDS
    from gati.projects import repository, service

    project = await make_project("revoke-me")
    async with make_app(**production_settings) as client:
        headers = bearer(project["secret_key"])
        assert (await client.get("/api/agents", headers=headers)).status_code == 200
        # Revoked outside this server process (as `gati key revoke` does): keys are cached for
        # KEY_CACHE_SECONDS, so the key must stop working within that window.
        async with db.session() as session:
            [key] = await repository.list_keys(session, project_id=project["id"])
            await service.revoke_key(session, project_id=project["id"], key_id=key.id)
        deadline = time.monotonic() + KEY_CACHE_SECONDS + 10
        while (r := await client.get("/api/agents", headers=headers)).status_code == 200:
            assert time.monotonic() < deadline, "a revoked key is still accepted"
            await asyncio.sleep(0.1)
        assert r.status_code == 401 and r.json()["error"] == "invalid_key"
