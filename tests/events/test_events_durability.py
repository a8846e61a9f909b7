"""An acknowledged event survives the server process being killed right after the answer."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
from sqlalchemy import select

from gati.events.models import Event


async def test_acknowledged_events_survive_sigkill(live_server: Any, db: Any) -> None:
    server = live_server()
    acknowledged: list[str] = []
    enough = asyncio.Event()

    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:

        async def send(i: int) -> None:
            response = await client.post(
                "/api/v1/events", json={"event_type": "durable", "properties": {"i": i}}
            )
            if response.status_code == 201:
                acknowledged.append(response.json()["id"])
                if len(acknowledged) >= 150:
                    enough.set()

        async def killer() -> None:
            # Kill as soon as a good number of answers arrived, while requests are in flight.
            await enough.wait()
            server.process.send_signal(signal.SIGKILL)

        tasks = [asyncio.create_task(send(i)) for i in range(400)]
        kill = asyncio.create_task(killer())
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.wait_for(kill, timeout=30)
    server.process.wait(timeout=10)
    assert server.process.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 150
    async with db.read_session() as session:
        stored = set(
            (await session.execute(select(Event.id).where(Event.event_type == "durable"))).scalars()
        )
    missing = set(acknowledged) - stored
    assert not missing, f"{len(missing)} acknowledged events were lost"
