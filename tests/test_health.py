"""/health: 503 with "database": "disconnected" while PostgreSQL is unreachable; recovery after."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

from tests.conftest import app_client, settings_for


class TcpProxy:
    """A real TCP hop in front of PostgreSQL that can be cut and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.links.update({writer, up_writer})
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for link in list(self.links):
            with contextlib.suppress(Exception):
                link.transport.abort()
        self.links.clear()
        await self.server.wait_closed()


async def test_database_down_then_back(pg_url: str) -> None:
    parsed = urlparse(pg_url.replace("+asyncpg", ""))
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    via_proxy = pg_url.replace(f"{parsed.hostname}:{parsed.port}", f"127.0.0.1:{proxy.port}")
    settings = settings_for(via_proxy, database_pool_timeout=3)
    async with app_client(settings) as client:
        assert (await client.get("/health")).json()["database"] == "connected"
        await proxy.cut()
        r = await client.get("/health")
        assert r.status_code == 503
        assert r.json() == {**r.json(), "status": "unhealthy", "database": "disconnected"}
        r = await client.post(
            "/api/events",
            json={"events": [{"event_type": "x", "run_id": "r", "agent_name": "a"}]},
        )
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"] == "database_unavailable"
        await proxy.start()  # same port: the database is back
        for _ in range(50):
            r = await client.get("/health")
            if r.status_code == 200:
                break
        assert r.status_code == 200 and r.json()["database"] == "connected"
        r = await client.post(
            "/api/events",
            json={"events": [{"event_type": "x", "run_id": "r", "agent_name": "a"}]},
        )
        assert r.status_code == 200
