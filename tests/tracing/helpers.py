from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2024, 11, 4, 10, 30, tzinfo=UTC)


def ts(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(
    event_type: str,
    run_id: str,
    *,
    agent: str = "my_agent",
    at: float = 0,
    event_id: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "run_id": run_id,
        "agent_name": agent,
        "timestamp": ts(at),
        "data": data,
    }
