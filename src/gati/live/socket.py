"""One live WebSocket session: authentication, subscriptions, expiry/revocation, aggregates.

Protocol (JSON text frames; docs/live.md):

client -> server
  {"type": "auth", "token": "<access token or sk_ key>"}          first message if no ?token=
  {"type": "subscribe", "project": 1, "metrics": ["cpu"], "events": true,
   "aggregate": {"functions": ["avg"], "bucket": "minute", "tz": "UTC",
                 "window_seconds": 3600, "interval_seconds": 10}}
  {"type": "unsubscribe", "project": 1, "metrics": ["cpu"], "events": true}
  {"type": "ping"}
server -> client
  {"type": "welcome", ...} {"type": "subscribed", ...} {"type": "unsubscribed", ...}
  {"type": "metric", "project_id", "name", "points": [...]}   every new point, after commit
  {"type": "event", "project_id", "events": [...]}            new product events (if subscribed)
  {"type": "aggregate", "project_id", "name", ...}            periodic aggregate updates
  {"type": "dropped", "count": N}                              N messages lost (slow client)
  {"type": "error", "error": code, "detail": text}             bad message; socket stays open
  {"type": "pong"}

Close codes: 4401 authentication failed (reason: the error code, e.g. ``token_expired``,
``invalid_token``, ``wrong_token_type``, ``token_revoked``, ``invalid_key``), 4403 credentials
that cannot read (public key), 4408 no auth message in time, 1011 server error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from gati.auth.deps import Principal, resolve_principal
from gati.auth.security import decode_token, looks_like_jwt
from gati.db.engine import Database
from gati.db.types import utcnow
from gati.exceptions import AppError
from gati.live.hub import LiveHub, Outbox, events_topic, metric_topic
from gati.metrics.aggregation import parse_functions
from gati.metrics.buckets import BUCKET_UNITS
from gati.metrics.schemas import NAME_PATTERN
from gati.settings import Settings

log = logging.getLogger(__name__)

CLOSE_AUTH_FAILED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_AUTH_TIMEOUT = 4408
AUTH_TIMEOUT_SECONDS = 10.0
MAX_TOPICS = 200
MIN_AGGREGATE_INTERVAL = 1.0
# The longest aggregate window a subscription may ask for: ten years (10,000 years overflowed).
MAX_AGGREGATE_WINDOW = 10 * 366 * 86400.0


class Closing(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Credentials:
    token: str
    principal: Principal
    expires_at: datetime | None


async def authenticate(
    db: Database, settings: Settings, token: str | None, default_project_id: int | None
) -> Credentials:
    """Resolve a token (user JWT or secret key). ``None`` token: local mode only."""
    async with db.read_session() as session:
        try:
            principal = await resolve_principal(
                session, token, settings=settings, default_project_id=default_project_id
            )
        except AppError as exc:
            raise Closing(CLOSE_AUTH_FAILED, exc.code) from exc
    if principal is None:
        raise Closing(CLOSE_AUTH_FAILED, "authentication_required")
    if not principal.can_read:
        raise Closing(CLOSE_FORBIDDEN, "read_not_allowed")
    expires_at = None
    if token is not None and looks_like_jwt(token):
        expires_at = decode_token(
            token, secret=settings.secret_key, expected_type="access"
        ).expires_at
    return Credentials(token or "", principal, expires_at)


@dataclass
class AggregateSpec:
    functions: list[str]
    bucket: str
    tz: str
    window: timedelta
    interval: float


@dataclass
class LiveSession:
    websocket: WebSocket
    db: Database
    settings: Settings
    hub: LiveHub
    default_project_id: int | None
    credentials: Credentials | None = None
    outbox: Outbox | None = None
    aggregates: dict[tuple[int, str], asyncio.Task[None]] = field(default_factory=dict)

    def send(self, message: dict[str, Any]) -> None:
        assert self.outbox is not None
        self.outbox.offer(orjson.dumps(message, option=orjson.OPT_UTC_Z).decode())

    def error(self, code: str, detail: str) -> None:
        self.send({"type": "error", "error": code, "detail": detail})

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, token: str | None) -> None:
        ws = self.websocket
        await ws.accept()
        try:
            if token is None and not self.settings.is_local:
                token = await self._first_message_token()
            self.credentials = await authenticate(
                self.db, self.settings, token, self.default_project_id
            )
        except Closing as closing:
            await self._close(closing.code, closing.reason)
            return
        self.outbox = self.hub.connect(outbox_size=self.settings.live_queue_size)
        principal = self.credentials.principal
        self.send(
            {
                "type": "welcome",
                "user_id": principal.user_id,
                "project_id": principal.project_id,
                "expires_at": self.credentials.expires_at,
                "queue_size": self.outbox.maxsize,
            }
        )
        tasks = [
            asyncio.create_task(self._writer(), name="live-writer"),
            asyncio.create_task(self._reader(), name="live-reader"),
            asyncio.create_task(self._watchdog(), name="live-watchdog"),
        ]
        close: tuple[int, str] | None = None
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if isinstance(exc, Closing):
                    close = (exc.code, exc.reason)
                elif exc is not None and not isinstance(exc, WebSocketDisconnect):
                    log.error("live socket failed", exc_info=exc)
                    close = (1011, "internal_error")
        finally:
            for task in [*tasks, *self.aggregates.values()]:
                task.cancel()
            await asyncio.gather(*tasks, *self.aggregates.values(), return_exceptions=True)
            await self.hub.disconnect(self.outbox)
            if close is not None:
                await self._close(*close)

    async def _close(self, code: int, reason: str) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=code, reason=reason)

    async def _first_message_token(self) -> str | None:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
                text = await self._receive_text()
        except TimeoutError as exc:
            raise Closing(CLOSE_AUTH_TIMEOUT, "auth_timeout") from exc
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise Closing(CLOSE_AUTH_FAILED, "auth_required") from exc
        if isinstance(message, dict) and message.get("type") == "auth":
            token = message.get("token")
            if isinstance(token, str) and token:
                return token
        raise Closing(CLOSE_AUTH_FAILED, "auth_required")

    async def _writer(self) -> None:
        assert self.outbox is not None
        outbox = self.outbox
        # The ASGI send of this connection, without Starlette's per-call state checks (the
        # socket is accepted and only this task sends data frames; a fan-out calls this once
        # per subscriber, so every layer counts). Falls back to the public API.
        send = getattr(self.websocket, "_send", None)
        if send is None:
            send_text = self.websocket.send_text
            while (text := await outbox.get()) is not None:
                await send_text(text)
            return
        while (text := await outbox.get()) is not None:
            await send({"type": "websocket.send", "text": text})

    async def _receive_text(self) -> str:
        """The next text frame. A binary frame is not a message of this protocol: it is
        answered with an error and skipped (Starlette's ``receive_text`` raised ``KeyError``).
        A disconnect raises ``WebSocketDisconnect``, as ``receive_text`` does."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
            text = message.get("text")
            if text is not None:
                return str(text)
            if self.outbox is None:  # the first message must be the auth message
                raise Closing(CLOSE_AUTH_FAILED, "auth_required")
            self.error("invalid_message", "binary frames are not accepted; send JSON as text")

    async def _reader(self) -> None:
        while True:
            text = await self._receive_text()
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.error("malformed_json", "messages must be JSON objects")
                continue
            if not isinstance(message, dict):
                self.error("invalid_message", "messages must be JSON objects with a 'type'")
                continue
            kind = message.get("type")
            if kind == "ping":
                self.send({"type": "pong"})
            elif kind == "subscribe":
                await self._subscribe(message)
            elif kind == "unsubscribe":
                await self._unsubscribe(message)
            elif kind == "auth":
                await self._renew(message)
            else:
                self.error(
                    "unknown_type",
                    f"type: {kind!r} is not one of subscribe, unsubscribe, auth, ping",
                )

    async def _watchdog(self) -> None:
        """Close when the token expires; re-check revocation and project access periodically."""
        interval = max(self.settings.live_revalidate_seconds, 0.05)
        while True:
            assert self.credentials is not None
            expires_at = self.credentials.expires_at
            wait = interval
            if expires_at is not None:
                remaining = (expires_at - utcnow()).total_seconds()
                if remaining <= 0:
                    raise Closing(CLOSE_AUTH_FAILED, "token_expired")
                wait = min(wait, remaining)
            await asyncio.sleep(wait)
            if expires_at is not None and utcnow() >= expires_at:
                raise Closing(CLOSE_AUTH_FAILED, "token_expired")
            await self._revalidate()

    async def _revalidate(self) -> None:
        assert self.credentials is not None and self.outbox is not None
        token = self.credentials.token or None
        try:
            fresh = await authenticate(self.db, self.settings, token, self.default_project_id)
        except Closing:
            raise
        except Exception:  # database briefly away: keep the socket, try again later
            log.warning("live: could not re-check credentials", exc_info=True)
            return
        self.credentials = fresh
        await self._revalidate_topics(fresh.principal)

    async def _revalidate_topics(self, principal: Principal) -> None:
        """Drop subscriptions to projects these credentials can no longer read."""
        assert self.outbox is not None
        lost = [t for t in self.outbox.topics if not principal.may_read(_topic_project(t))]
        if lost:
            await self.hub.unsubscribe(self.outbox, lost)
            for key in [k for k in self.aggregates if not principal.may_read(k[0])]:
                self.aggregates.pop(key).cancel()
            self.send({"type": "unsubscribed", "topics": lost, "reason": "access_revoked"})

    async def _renew(self, message: dict[str, Any]) -> None:
        token = message.get("token")
        if not isinstance(token, str) or not token:
            self.error("invalid_message", "token: required")
            return
        fresh = await authenticate(self.db, self.settings, token, self.default_project_id)
        assert self.credentials is not None
        current = self.credentials.principal
        if current.kind != "local" and fresh.principal.user_id != current.user_id:
            raise Closing(CLOSE_AUTH_FAILED, "different_user")
        if current.kind == "local":  # local mode: a token narrows the socket to its projects
            await self._revalidate_topics(fresh.principal)
        self.credentials = fresh
        self.send({"type": "welcome", "renewed": True, "expires_at": fresh.expires_at})

    # -- subscriptions --------------------------------------------------------------------------

    async def _project_id(self, ref: Any) -> int | None:
        assert self.credentials is not None
        principal = self.credentials.principal
        if ref is None or ref == "":
            if principal.project_id is None:
                self.error("project_required", "project: these credentials have no default project")
            return principal.project_id
        if not isinstance(ref, int | str) or isinstance(ref, bool):
            self.error("invalid_message", "project: must be a project id or slug")
            return None
        from gati.projects.service import get_project

        async with self.db.read_session() as session:
            project = await get_project(session, ref)
        if project is None or not principal.may_read(project.id):
            self.error(
                "project_not_found", f"Project {ref} does not exist or is not visible to you"
            )
            return None
        return project.id

    def _names(self, message: dict[str, Any]) -> list[str] | None:
        names = message.get("metrics", [])
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(
            isinstance(n, str) and NAME_PATTERN.match(n) for n in names
        ):
            self.error("invalid_message", "metrics: must be a list of metric names")
            return None
        return names

    async def _subscribe(self, message: dict[str, Any]) -> None:
        assert self.outbox is not None
        names = self._names(message)
        if names is None:
            return
        project_id = await self._project_id(message.get("project"))
        if project_id is None:
            return
        topics = [metric_topic(project_id, name) for name in names]
        if message.get("events"):
            topics.append(events_topic(project_id))
        if len(self.outbox.topics | set(topics)) > MAX_TOPICS:
            self.error("too_many_subscriptions", f"at most {MAX_TOPICS} subscriptions per socket")
            return
        spec = None
        if message.get("aggregate") is not None:
            spec = self._aggregate_spec(message["aggregate"])
            if spec is None:
                return
        await self.hub.subscribe(self.outbox, topics)
        if spec is not None:
            for name in names:
                key = (project_id, name)
                if key in self.aggregates:
                    self.aggregates.pop(key).cancel()
                self.aggregates[key] = asyncio.create_task(
                    self._aggregate_loop(project_id, name, spec)
                )
        self.send(
            {
                "type": "subscribed",
                "project_id": project_id,
                "metrics": names,
                "events": bool(message.get("events")),
                "aggregate": spec is not None,
            }
        )

    async def _unsubscribe(self, message: dict[str, Any]) -> None:
        assert self.outbox is not None
        names = self._names(message)
        if names is None:
            return
        project_id = await self._project_id(message.get("project"))
        if project_id is None:
            return
        topics = [metric_topic(project_id, name) for name in names]
        if message.get("events"):
            topics.append(events_topic(project_id))
        await self.hub.unsubscribe(self.outbox, topics)
        for name in names:
            task = self.aggregates.pop((project_id, name), None)
            if task is not None:
                task.cancel()
        self.send({"type": "unsubscribed", "project_id": project_id, "metrics": names})

    def _aggregate_spec(self, raw: Any) -> AggregateSpec | None:
        if not isinstance(raw, dict):
            self.error("invalid_message", "aggregate: must be an object")
            return None
        try:
            functions = parse_functions(raw.get("functions", ["count", "avg"]))
            bucket = str(raw.get("bucket", "minute"))
            if bucket not in BUCKET_UNITS:
                raise ValueError(f"bucket {bucket!r} is not one of {', '.join(BUCKET_UNITS)}")
            seconds = float(raw.get("window_seconds", 3600))
            if not 0 < seconds <= MAX_AGGREGATE_WINDOW:  # also NaN
                raise ValueError(f"window_seconds must be in (0, {MAX_AGGREGATE_WINDOW:.0f}]")
            window = timedelta(seconds=seconds)
            interval = float(raw.get("interval_seconds", 10))
            if not interval <= MAX_AGGREGATE_WINDOW:  # also NaN
                raise ValueError(f"interval_seconds must be at most {MAX_AGGREGATE_WINDOW:.0f}")
            interval = max(interval, MIN_AGGREGATE_INTERVAL)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            self.error("invalid_message", f"aggregate: {exc}")
            return None
        return AggregateSpec(functions, bucket, str(raw.get("tz", "UTC")), window, interval)

    async def _aggregate_loop(self, project_id: int, name: str, spec: AggregateSpec) -> None:
        from gati.metrics import service as metrics

        while True:
            end = utcnow()
            try:
                result = await metrics.aggregate(
                    self.db,
                    project_ids=[project_id],
                    name=name,
                    tags={},
                    functions=spec.functions,
                    unit=spec.bucket,  # type: ignore[arg-type]
                    tz_name=spec.tz,
                    start=end - spec.window,
                    end=end,
                    max_buckets=self.settings.metrics_max_buckets,
                )
            except AppError as exc:
                self.error(exc.code, exc.detail)
                return
            except Exception:
                log.warning("live: aggregate update failed", exc_info=True)
            else:
                self.send({"type": "aggregate", "project_id": project_id, **result})
            await asyncio.sleep(spec.interval)


def _topic_project(topic: str) -> int:
    parts = topic.split(":", 2)
    return int(parts[1])
