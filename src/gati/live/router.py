"""``WS /api/v1/ws/metrics``: live metric points, events and aggregates (protocol: socket.py)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from gati.app import SHUTDOWN_HOOKS, STARTUP_HOOKS
from gati.live import runtime
from gati.live.socket import LiveSession

router = APIRouter(tags=["live"])

STARTUP_HOOKS.append(runtime.startup)
SHUTDOWN_HOOKS.append(runtime.shutdown)


@router.websocket("/ws/metrics")
async def metrics_socket(websocket: WebSocket, token: str | None = None) -> None:
    """Subscribe to metric points (and events) of readable projects; see docs/live.md.

    Authenticate with ``?token=<access token>`` or, to keep the token out of URLs and logs, with
    a first message ``{"type": "auth", "token": "..."}``.
    """
    app = websocket.app
    session = LiveSession(
        websocket=websocket,
        db=app.state.db,
        settings=app.state.settings,
        hub=app.state.realtime.hub,
        default_project_id=getattr(app.state, "default_project_id", None),
    )
    await session.run(token)
