"""API keys are looked up once per key at a time: concurrent requests whose cache entry is
missing or expired share one database lookup, and its answer (or its 401) reaches them all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gati.auth import deps

E = "/api/v1/events"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key the database is asked about (the real lookup still runs)."""
    seen: list[str] = []
    real = deps.resolve_principal

    async def counting(session: Any, credential: str | None, **kwargs: Any) -> Any:
        seen.append(str(credential))
        return await real(session, credential, **kwargs)

    monkeypatch.setattr(deps, "resolve_principal", counting)
    return seen


async def test_concurrent_requests_share_one_key_lookup(
    make_app: Any, production_settings: dict[str, Any], make_project: Any, lookups: list[str]
) -> None:
    project = await make_project("herd")
    key = {"Authorization": f"Bearer {project['secret_key']}"}
    async with make_app(**production_settings) as client:

        async def burst() -> list[int]:
            answers = await asyncio.gather(
                *(client.post(E, json={"event_type": "x"}, headers=key) for _ in range(20))
            )
            return [answer.status_code for answer in answers]

        assert await burst() == [201] * 20
        assert lookups == [project["secret_key"]]
        assert await burst() == [201] * 20  # cached
        assert len(lookups) == 1
        # The entry expires while requests keep coming: one lookup again, not twenty.
        cache = client.app.state.key_cache  # type: ignore[attr-defined]
        cache[project["secret_key"]] = (0.0, cache[project["secret_key"]][1])
        assert await burst() == [201] * 20
        assert len(lookups) == 2

        # An unknown key: one lookup, and every request gets the 401.
        unknown = {"Authorization": "Bearer sk_not_a_key_of_anyone_0123456789"}
        answers = await asyncio.gather(
            *(client.post(E, json={"event_type": "x"}, headers=unknown) for _ in range(10))
        )
        assert [a.status_code for a in answers] == [401] * 10
        assert {a.json()["error"] for a in answers} == {"invalid_key"}
        assert len(lookups) == 3
        assert not client.app.state.key_lookups  # type: ignore[attr-defined]


async def test_forget_keys_drops_lookups_in_flight(
    make_app: Any,
    production_settings: dict[str, Any],
    make_project: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = await make_project("revoked-meanwhile")
    key = {"Authorization": f"Bearer {project['secret_key']}"}
    started, release = asyncio.Event(), asyncio.Event()
    real = deps.resolve_principal

    async def held(session: Any, credential: str | None, **kwargs: Any) -> Any:
        started.set()
        await release.wait()
        return await real(session, credential, **kwargs)

    monkeypatch.setattr(deps, "resolve_principal", held)
    async with make_app(**production_settings) as client:
        app = client.app  # type: ignore[attr-defined]
        request = asyncio.create_task(client.post(E, json={"event_type": "x"}, headers=key))
        await started.wait()  # the lookup is in flight
        deps.forget_keys(app)  # what revoking a key does
        release.set()
        assert (await request).status_code == 201  # the key was valid when it was read
        # ...but that answer is not cached: the next request looks the key up again.
        assert project["secret_key"] not in app.state.key_cache
