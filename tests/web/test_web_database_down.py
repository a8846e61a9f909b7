"""An unreachable database: /collect answers 503 with Retry-After, never a 500 or a hang."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from gati.db.engine import Database
from tests.conftest import PG_ADMIN_DSN
from tests.web.helpers import CHROME, stored_events


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # a server to take away
async def test_collect_answers_503_when_postgresql_is_unreachable(
    make_app: Callable[..., Any],
    make_project: Callable[..., Any],
    db: Database,
    database_url: str,
) -> None:
    name = database_url.rsplit("/", 1)[1]
    project = await make_project()
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        async with make_app() as client:
            body = {"siteId": project["slug"], "url": "https://a.io/"}
            first = await client.post("/collect", json=body, headers={"user-agent": CHROME})
            assert first.status_code == 200
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            down = await client.post("/collect", json=body, headers={"user-agent": CHROME})
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "database_unavailable"
            assert int(down.headers["retry-after"]) > 0
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            again = await client.post("/collect", json=body, headers={"user-agent": CHROME})
            assert again.status_code == 200, again.text
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert len(await stored_events(db, project["id"])) == 2
