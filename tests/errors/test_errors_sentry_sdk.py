"""The real ``sentry-sdk`` reporting to a real ``gati serve`` process, on SQLite and PostgreSQL.

The SDK runs in a subprocess (its integrations patch the interpreter), with and without brotli
importable: with it, the SDK compresses envelopes with br; without, with gzip.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gati.db.engine import Database
from gati.errors.models import ErrorEvent, Issue
from gati.errors.service import event_dict

SDK_SCRIPT = textwrap.dedent(
    r"""
    import sys

    dsn, mode = sys.argv[1], sys.argv[2]
    if mode == "no-brotli":
        sys.modules["brotli"] = None  # as if brotli were not installed

    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=dsn,
        release="shop@2.0.0",
        environment="staging",
        send_default_pii=True,
        integrations=[FlaskIntegration()],
        default_integrations=True,
        auto_enabling_integrations=False,
    )
    sentry_sdk.set_tag("tenant", "acme")
    sentry_sdk.set_user({"id": "user-7", "email": "seven@example.com"})
    sentry_sdk.add_breadcrumb(category="auth", message="signed in", level="info")

    def charge(amount):
        return amount / 0

    try:
        charge(10)
    except ZeroDivisionError as exc:
        sentry_sdk.capture_exception(exc)

    sentry_sdk.capture_message("cache miss for key 42", level="warning")

    from flask import Flask

    app = Flask("shop")

    @app.route("/orders/<int:order_id>")
    def order(order_id):
        raise KeyError(f"order {order_id} not found")

    app.testing = False
    response = app.test_client().get("/orders/17?expand=items")
    assert response.status_code == 500, response.status_code

    client = sentry_sdk.get_client()
    print("compression", client.transport._compression_algo)
    sentry_sdk.flush(timeout=60)
    """
)


def _run_sdk(tmp_path: Path, dsn: str, mode: str) -> str:
    script = tmp_path / "sdk_client.py"
    script.write_text(SDK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), dsn, mode], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def _events(db: Database, project_id: int) -> list[ErrorEvent]:
    # No waiting: sentry_sdk.flush() returned after the server answered every envelope, and the
    # server answers only after the events are committed, so they must all be readable now.
    async with db.read_session() as session:
        return list(
            (
                await session.scalars(select(ErrorEvent).where(ErrorEvent.project_id == project_id))
            ).all()
        )


@pytest.mark.parametrize("mode", ["brotli", "no-brotli"])
async def test_real_sentry_sdk(
    mode: str, live_server: Any, make_project: Any, db: Database, tmp_path: Path
) -> None:
    project = await make_project("sdk-app")
    server = live_server()
    host = server.url.split("://", 1)[1]
    dsn = f"http://{project['public_key']}@{host}/{project['id']}"
    output = await asyncio.to_thread(_run_sdk, tmp_path, dsn, mode)
    assert f"compression {'br' if mode == 'brotli' else 'gzip'}" in output

    rows = await _events(db, project["id"])
    assert len(rows) == 3
    # what GET /api/v1/error-events/{id} answers for each stored row
    by_type = {r.exception_type: event_dict(r, issue_id=None, with_payload=True) for r in rows}

    handled = by_type["ZeroDivisionError"]
    assert handled["exception"] == {"type": "ZeroDivisionError", "value": "division by zero"}
    assert handled["frames"] and handled["frames"][-1]["function"] == "charge"
    assert handled["frames"][-1]["in_app"] is True
    assert handled["environment"] == "staging" and handled["release"] == "shop@2.0.0"
    assert handled["tags"]["tenant"] == "acme"
    assert handled["user"] is not None and handled["user"]["id"] == "user-7"
    assert any(b.get("message") == "signed in" for b in handled["breadcrumbs"])
    assert handled["platform"] == "python" and handled["source"] == "sentry"

    message = by_type[None]
    assert message["message"] == "cache miss for key 42" and message["level"] == "warning"

    unhandled = by_type["KeyError"]
    assert unhandled["request"]["method"] == "GET"
    assert unhandled["request"]["url"].endswith("/orders/17?expand=items")
    assert unhandled["payload"]["exception"]["values"][-1]["mechanism"]["handled"] is False
    assert unhandled["transaction"] is not None and "order" in unhandled["transaction"]
    assert any(f.get("function") == "order" for f in unhandled["frames"])

    async with db.read_session() as session:
        issues = (
            await session.scalars(select(Issue).where(Issue.project_id == project["id"]))
        ).all()
    assert len(issues) == 3
    assert {i.title for i in issues} == {
        "ZeroDivisionError: division by zero",
        "cache miss for key 42",
        "KeyError: 'order 17 not found'",
    }
