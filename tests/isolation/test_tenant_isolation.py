"""Tenant A cannot read, change or subscribe to tenant B's data through ANY endpoint.

The HTTP routes are not listed by hand: the test iterates over every route of the app as it is
when the test runs (so endpoints added later are covered too), and calls each with tenant A's
credentials (user token, secret key, public key) aimed at tenant B's identifiers (path
parameters, ``?project=``, project fields in bodies). Then:

* no response contains B's secret marker or credentials (nothing of B's was read);
* every request that names one of B's own identifiers in its path was refused (4xx);
* every row of B (every table with a ``project_id`` in B's projects, B's user, sessions and
  refresh tokens) is byte-for-byte unchanged (nothing of B's was changed or added);
* B's credentials still work.

WebSocket routes: A subscribes to B's project and receives nothing of B's.
Runs against a real ``gati serve`` process in production mode, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

import httpx
import orjson
import pytest
import websockets
from fastapi.routing import iter_route_contexts
from sqlalchemy import select
from starlette.routing import WebSocketRoute

from gati.app import create_app
from gati.db.base import Base
from gati.db.models_registry import __all__ as _models  # noqa: F401
from gati.settings import Settings
from tests.auth.helpers import PASSWORD, bearer, register, unique_email
from tests.conftest import PRODUCTION_SECRET

MARK = "zq-tenant-b-secret-7731"
MARK_VALUE = 987654.25  # B's metric values: an aggregate that included them would show it
PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")

# Routes that only ever act on the caller themselves; run last so that A keeps working.
SELF_DESTRUCTIVE = {("DELETE", "/api/v1/users/me"), ("POST", "/api/v1/auth/logout")}
# Public by design: the web analytics tracking script posts with a site id only (seed 003), so
# anybody, not only tenant A, can add pageviews to any site. Checked for leaks, not for writes.
PUBLIC_INGEST = {("POST", "/collect"), ("GET", "/collect")}


def _routes() -> tuple[list[tuple[str, str]], list[str]]:
    settings = Settings(
        environment="production",
        secret_key=PRODUCTION_SECRET,
        cors_origins=["https://app.example.com"],
        database_url="sqlite:///unused.db",
    )
    app = create_app(settings)
    http: list[tuple[str, str]] = []
    ws: list[str] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, WebSocketRoute) or context.methods is None:
            ws.append(context.path)
            continue
        for method in sorted(context.methods - {"HEAD", "OPTIONS"}):
            http.append((method, context.path))
    return http, ws


async def _b_rows(db: Any, b_projects: list[int], b_user: int) -> dict[str, list[str]]:
    """Every row of tenant B, serialised, per table."""
    snapshot: dict[str, list[str]] = {}
    async with db.read_session() as session:
        for table in Base.metadata.sorted_tables:
            columns = table.c
            if "project_id" in columns:
                where = columns.project_id.in_(b_projects)
            elif table.name == "users":
                where = columns.id == b_user
            elif "user_id" in columns:
                where = columns.user_id == b_user
            else:
                continue
            rows = (await session.execute(select(table).where(where))).all()
            snapshot[table.name] = sorted(repr(tuple(row)) for row in rows)
    return snapshot


async def _b_id_values(db: Any, b_projects: list[int]) -> dict[str, list[str]]:
    """The ``id`` of B's rows in every table that has one (issue ids, point ids, ...)."""
    out: dict[str, list[str]] = {}
    async with db.read_session() as session:
        for table in Base.metadata.sorted_tables:
            if "project_id" in table.c and "id" in table.c:
                ids = (
                    await session.execute(
                        select(table.c.id).where(table.c.project_id.in_(b_projects)).limit(5)
                    )
                ).scalars()
                out[table.name] = [str(i) for i in ids]
    return out


@pytest.mark.slow
async def test_tenant_a_cannot_reach_tenant_b(live_server: Any, db: Any) -> None:
    server = live_server(
        ENVIRONMENT="production",
        SECRET_KEY=PRODUCTION_SECRET,
        CORS_ORIGINS="https://app.example.com",
        RATE_LIMIT_ENABLED="false",
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        # --- tenant B: a user, two projects, a key, and data of every signal -----------------
        b = await register(client, unique_email("b"), full_name=f"B {MARK}")
        b_project = (
            await client.post(
                "/api/v1/projects",
                json={"name": f"B project {MARK}", "slug": "b-project"},
                headers=b["headers"],
            )
        ).json()
        b_key = b_project["secret_key"]
        b_personal = b["user"]["default_project_id"]
        b_projects = [b_personal, b_project["id"]]
        kh = bearer(b_key)
        seeded = {
            "product event": await client.post(
                "/api/v1/events",
                json={"event_type": "b-evt", "event_id": "b-event-1", "properties": {"s": MARK}},
                headers=kh,
            ),
            "product event (personal)": await client.post(
                "/api/v1/events",
                json={"event_type": "b-evt", "event_id": "b-event-2", "properties": {"s": MARK}},
                headers=b["headers"],
            ),
            "error report": await client.post(
                "/api/v1/events",
                json={"project_key": b_project["slug"], "message": f"boom {MARK}"},
                headers=kh,
            ),
            "metric": await client.post(
                "/api/v1/metrics",
                json={"name": "b_metric", "value": MARK_VALUE, "tags": {"s": MARK}},
                headers=kh,
            ),
            "trace": await client.post(
                "/api/events",
                json={
                    "events": [
                        {
                            "event_id": "b-trace-1",
                            "event_type": "llm_call",
                            "run_id": "b-run",
                            "agent_name": "b-agent",
                            "data": {"s": MARK},
                        }
                    ]
                },
                headers=kh,
            ),
            "web": await client.post(
                "/collect",
                json={
                    "siteId": b_project["slug"],
                    "eventType": "pageview",
                    "url": f"https://b.example/{MARK}",
                },
                headers={"X-API-Key": b_project["public_key"]},
            ),
        }
        for what in (
            "product event",
            "product event (personal)",
            "error report",
            "metric",
            "trace",
        ):
            assert seeded[what].status_code < 300, (what, seeded[what].text)
        before = await _b_rows(db, b_projects, b["user"]["id"])
        secrets_of_b = [MARK, str(MARK_VALUE), b_key, b["refresh_token"], b["access_token"]]

        # --- tenant A -------------------------------------------------------------------------
        a = await register(client, unique_email("a"))
        a_project = (
            await client.post("/api/v1/projects", json={"name": "A project"}, headers=a["headers"])
        ).json()
        credentials = {
            "a-user": a["headers"],
            "a-secret-key": bearer(a_project["secret_key"]),
            "a-public-key": {"X-API-Key": a_project["public_key"]},
        }

        # Values for path parameters: B's own identifiers (refusal required) ...
        b_specific: dict[str, list[str]] = {
            "project": [
                str(b_project["id"]),
                b_project["slug"],
                b_project["public_key"],
                str(b_personal),
            ],
            "project_id": [str(b_project["id"])],
            "site": [b_project["slug"]],
            "agent_name": ["b-agent"],
            "run_id": ["b-run"],
            "event_id": ["b-event-1", "b-trace-1"],
            "user_id": [str(b["user"]["id"])],
        }
        # Names that any tenant may use too (an aggregate of "b_metric" over A's own projects
        # is a legitimate empty answer): B's marker values catch a leak there.
        shared_names: dict[str, list[str]] = {"name": ["b_metric"]}
        # ... and every id of B's rows (for ids a table of B has).
        id_values = sorted(
            set(itertools.chain.from_iterable((await _b_id_values(db, b_projects)).values()))
        )
        # Bodies aim at B's project; the names in them are A's own (A may use any name in A's
        # projects, so reusing B's names would make A's own later reads look like leaks).
        bodies = [
            {
                "project": b_project["id"],
                "project_id": b_project["id"],
                "project_key": b_project["slug"],
                "siteId": b_project["slug"],
                "name": "intruder",
                "email": b["email"],
                "role": "owner",
                "status": "resolved",
            },
            {"event_type": "intruder", "event_id": "intruder-1", "project": b_project["id"]},
            {"project_key": b_project["slug"], "message": "intruder"},
            {
                "events": [
                    {
                        "event_type": "intruder",
                        "event_id": "intruder-2",
                        "run_id": "intruder-run",
                        "agent_name": "intruder-agent",
                        "project": b_project["id"],
                    }
                ]
            },
            {"name": "intruder_metric", "value": 666, "project": b_project["id"]},
        ]

        http_routes, ws_routes = _routes()
        leaks: list[str] = []
        not_refused: list[str] = []

        async def sweep(routes: list[tuple[str, str]]) -> int:
            checked = 0
            for method, template in routes:
                params = PARAM.findall(template)
                choices: list[list[tuple[str, bool]]] = []
                for param in params:
                    values = [(v, True) for v in b_specific.get(param, [])]
                    values += [(v, False) for v in shared_names.get(param, [])]
                    if (param not in b_specific and param not in shared_names) or (
                        param.endswith("id") or param == "ident"
                    ):
                        values += [(v, False) for v in id_values if (v, True) not in values]
                    choices.append(values or [("1", False)])
                for combo in itertools.product(*choices) if params else [()]:
                    path = template
                    for param, (value, _) in zip(params, combo, strict=True):
                        path = path.replace("{" + param + "}", value, 1)
                    names_b = any(specific for _, specific in combo)
                    for cred_name, headers in credentials.items():
                        for query in ("", f"?project={b_project['id']}"):
                            for body in bodies if method in ("POST", "PUT", "PATCH") else [None]:
                                response = await client.request(
                                    method,
                                    path + query,
                                    content=orjson.dumps(body) if body is not None else None,
                                    headers={**headers, "Content-Type": "application/json"},
                                )
                                checked += 1
                                where = (
                                    f"{cred_name} {method} {path}{query} -> {response.status_code}"
                                )
                                text = response.text
                                if any(secret in text for secret in secrets_of_b):
                                    leaks.append(where + " " + text[:300])
                                if names_b and response.status_code < 400:
                                    not_refused.append(where + " " + text[:300])
            return checked

        private = [r for r in http_routes if r not in PUBLIC_INGEST]
        private.sort(key=lambda route: route in SELF_DESTRUCTIVE)
        assert await sweep(private) > 500
        assert not leaks, "B's data leaked:\n" + "\n".join(leaks[:20])
        assert not not_refused, "requests on B's resources succeeded:\n" + "\n".join(
            not_refused[:20]
        )
        # Nothing of B changed, nothing was added to B's projects.
        after = await _b_rows(db, b_projects, b["user"]["id"])
        changed = [t for t in before if before[t] != after.get(t)]
        assert not changed, {t: (before[t][:3], after.get(t, [])[:3]) for t in changed}

        # Public collection endpoints take anyone's events for any site (like any web analytics
        # script): they may add to B's site, but must not reveal anything of B's.
        await sweep([r for r in http_routes if r in PUBLIC_INGEST])
        assert not leaks, "B's data leaked:\n" + "\n".join(leaks[:20])

        # --- WebSockets: A subscribes to B's project and gets nothing of B's -------------------
        a2 = await client.post(
            "/api/v1/auth/login", json={"email": a["email"], "password": PASSWORD}
        )
        a_token = a2.json()["access_token"] if a2.status_code == 200 else None
        if a_token is None:  # A was deleted by the last sweep; a fresh tenant A
            a_token = (await register(client, unique_email("a2")))["access_token"]
        ws_base = server.url.replace("http://", "ws://")
        for template in ws_routes:
            async with websockets.connect(f"{ws_base}{template}?token={a_token}") as socket:
                received: list[str] = []
                await socket.send(
                    orjson.dumps(
                        {
                            "type": "subscribe",
                            "project": b_project["id"],
                            "metrics": ["b_metric"],
                            "events": True,
                        }
                    ).decode()
                )
                await socket.send(
                    orjson.dumps(
                        {
                            "type": "subscribe",
                            "project": b_project["slug"],
                            "metrics": ["b_metric"],
                            "events": True,
                        }
                    ).decode()
                )
                # B's new data, then a ping: everything for A before the pong has arrived.
                await client.post(
                    "/api/v1/events",
                    json={"event_type": "b-live", "properties": {"s": MARK}},
                    headers=kh,
                )
                await client.post(
                    "/api/v1/metrics",
                    json={"name": "b_metric", "value": MARK_VALUE, "tags": {"s": MARK}},
                    headers=kh,
                )
                await socket.send('{"type": "ping"}')
                try:
                    while True:
                        message = await asyncio.wait_for(socket.recv(), timeout=10)
                        received.append(str(message))
                        if '"pong"' in str(message):
                            break
                except websockets.ConnectionClosed:
                    pass
                assert not any(MARK in m for m in received), received
                assert not any('"subscribed"' in m for m in received), received

        # B is unaffected and still sees its data.
        assert (await client.get("/api/v1/users/me", headers=b["headers"])).status_code == 200
        listed = await client.get("/api/v1/events", headers=kh)
        assert listed.status_code == 200 and MARK in listed.text
