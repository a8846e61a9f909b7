"""Rules of error tracking: ingestion (seed-002 reports and the Sentry protocol), grouping into
issues once per batch, the issues API and retention."""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.requests import Request

from gati.auth.deps import Principal
from gati.auth.security import PUBLIC_KEY_PREFIX, hash_api_key
from gati.cache.singleflight import SingleFlight
from gati.db import bulk
from gati.db.engine import Database
from gati.db.types import utcnow
from gati.errors import repository
from gati.errors.envelope import (
    EnvelopeError,
    SentryAuthError,
    build_dsn,
    extract_sentry_credentials,
    parse_envelope,
    parse_store_body,
    rate_limit_headers,
)
from gati.errors.models import ErrorEvent, Issue
from gati.errors.normalize import (
    NormalizedErrorEvent,
    normalize_error_report,
    normalize_sentry_event,
)
from gati.errors.schemas import ErrorReportIn
from gati.exceptions import AppError
from gati.ingest.groupcommit import GroupCommitter
from gati.ingest.nul import NUL_REASON
from gati.process_tuning import quick_gil_handoffs
from gati.projects import repository as projects_repo
from gati.projects.models import Project
from gati.projects.service import get_or_create_by_slug, get_project, slugify
from gati.ratelimit.limiter import MemoryRateLimiter, RateLimit, RateLimiter
from gati.settings import Settings

log = logging.getLogger(__name__)

WRITER_KIND = "errors"
KEY_CACHE_SECONDS = 30.0
KEY_CACHE_MISS_SECONDS = 5.0
RETENTION_CHUNK = 5_000


# ---------------------------------------------------------------------------------------------
# Per-app runtime state: key cache and rate limiter
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectRef:
    id: int
    slug: str
    public_key: str
    settings: Mapping[str, Any]


@dataclass
class ErrorsRuntime:
    """What the Sentry endpoints keep between requests (one per app, in ``app.state``)."""

    limiter: RateLimiter = field(default_factory=MemoryRateLimiter)
    _keys: dict[str, tuple[float, ProjectRef | None]] = field(default_factory=dict)
    _limits: dict[str, RateLimit | None] = field(default_factory=dict)
    # Concurrent misses of one key share one database lookup (gati.cache.singleflight); a
    # lookup that started before forget_projects() does not cache its answer (generation).
    lookups: SingleFlight[str, ProjectRef | None] = field(default_factory=SingleFlight)
    generation: int = 0

    def cached_project(self, key: str) -> tuple[bool, ProjectRef | None]:
        hit = self._keys.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def remember_project(self, key: str, project: ProjectRef | None) -> None:
        ttl = KEY_CACHE_SECONDS if project is not None else KEY_CACHE_MISS_SECONDS
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key] = (time.monotonic() + ttl, project)

    def forget_projects(self) -> None:
        self._keys.clear()
        self.generation += 1
        self.lookups.forget()

    def rate_limit(self, spec: str | None) -> RateLimit | None:
        if spec is None:
            return None
        if spec not in self._limits:
            text = spec.strip().lower()
            self._limits[spec] = None if text in ("", "off", "none", "0") else RateLimit.parse(spec)
        return self._limits[spec]


def _ref(project: Project) -> ProjectRef:
    return ProjectRef(
        id=project.id,
        slug=project.slug,
        public_key=project.public_key,
        settings=dict(project.settings or {}),
    )


def _project_rate_limit(
    runtime: ErrorsRuntime, settings: Settings, project: ProjectRef
) -> RateLimit | None:
    spec = project.settings.get("error_rate_limit", settings.errors_rate_limit)
    try:
        return runtime.rate_limit(spec if isinstance(spec, str) or spec is None else str(spec))
    except ValueError:
        log.warning("project %s: invalid error_rate_limit %r ignored", project.id, spec)
        return runtime.rate_limit(settings.errors_rate_limit)


async def check_rate_limit(
    runtime: ErrorsRuntime,
    settings: Settings,
    project: ProjectRef,
    *,
    cost: int,
    sentry_headers: bool,
) -> None:
    limit = _project_rate_limit(runtime, settings, project)
    if limit is None or cost <= 0:
        return
    decision = await runtime.limiter.hit(f"errors:{project.id}", limit, cost=cost)
    if decision.allowed:
        return
    retry_after = int(decision.retry_after_header)
    headers = (
        rate_limit_headers(
            retry_after_seconds=retry_after,
            categories=("error", "default"),
            scope="project",
            reason_code="project_rate_limit",
        )
        if sentry_headers
        else {"Retry-After": str(retry_after)}
    )
    raise AppError(
        429,
        "rate_limited",
        f"Project {project.id} sends errors faster than its limit; retry after {retry_after}s",
        headers=headers,
    )


# ---------------------------------------------------------------------------------------------
# The batch writer (group commit): events and their issues, once per batch
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ErrorWrite:
    project_id: int
    event: NormalizedErrorEvent
    want_row_id: bool = False


@dataclass(slots=True)
class ErrorWriteResult:
    event_id: str
    stored: bool  # False: an event with this event_id was already stored (a retry)
    issue_id: int | None = None  # the issue the event was added to (None for a retry)
    row_id: int | None = None


def _event_row(project_id: int, e: NormalizedErrorEvent) -> tuple[Any, ...]:
    return (
        project_id,
        e.event_id,
        e.fingerprint,
        e.timestamp,
        e.received_at,
        e.source,
        e.level,
        e.platform,
        e.title,
        e.culprit,
        e.message,
        e.exception_type,
        e.exception_value,
        e.transaction,
        e.request_method,
        e.request_url,
        e.status_code,
        e.environment,
        e.release,
        e.server_name,
        e.payload_json or orjson.dumps(e.payload).decode(),
    )


class SeenValues:
    """(issue id, kind, value) pairs stored already in one database: most batches repeat the
    same environments and releases, and skipping them saves a statement per batch. Pairs become
    "seen" only when their transaction commits. Issue ids are never reused (AUTOINCREMENT on
    SQLite, a sequence on PostgreSQL), so an entry cannot go stale."""

    _PENDING = "gati_errors_pending_values"

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self.pairs: set[tuple[int, str, str]] = set()

    def pending(self, conn: AsyncConnection, keys: set[tuple[int, str, str]]) -> None:
        """Pairs written in ``conn``'s transaction: seen once it commits."""
        conn.info.setdefault(self._PENDING, set()).update(keys)

    def add(self, keys: set[tuple[int, str, str]]) -> None:
        """Pairs committed already."""
        if len(self.pairs) + len(keys) > self.limit:
            self.pairs.clear()
        self.pairs |= keys

    def on_commit(self, sync_conn: Any) -> None:
        keys = sync_conn.info.pop(self._PENDING, None)
        if keys:
            self.add(keys)

    def on_rollback(self, sync_conn: Any) -> None:
        if sync_conn.invalidated:
            # The database connection is gone (and its info with it); reading ``info`` now
            # would raise PendingRollbackError from inside the rollback, hiding the real error.
            return
        sync_conn.info.pop(self._PENDING, None)


_SEEN_VALUES: weakref.WeakKeyDictionary[Any, SeenValues] = weakref.WeakKeyDictionary()


def install_seen_values(db: Database) -> None:
    """Enable the seen-values shortcut for this database's writer engine (app start-up). SQLite
    only: PostgreSQL's batch statement checks the values itself, so listening to every commit
    there would be work for nothing."""
    engine = db.write_engine.sync_engine
    if db.dialect != "sqlite" or engine in _SEEN_VALUES:
        return
    seen = SeenValues()
    sa_event.listen(engine, "commit", seen.on_commit)
    sa_event.listen(engine, "rollback", seen.on_rollback)
    _SEEN_VALUES[engine] = seen


async def write_error_batch(
    conn: AsyncConnection, items: list[ErrorWrite]
) -> list[ErrorWriteResult]:
    """Store a batch of error events in the caller's transaction: the events (duplicates of
    stored event_ids are dropped by the database) and ONE issue upsert with one row per
    fingerprint carrying exactly the newly stored events - never one per event, and a retried
    event never counts twice. On PostgreSQL all of it is one statement (atomic by itself: the
    group committer runs it without BEGIN/COMMIT); on SQLite one thread hop (``_store_batch``)."""
    # 1. one representative per (project, event_id); duplicates inside the batch share its result
    first_of: dict[tuple[int, str], int] = {}
    for index, item in enumerate(items):
        first_of.setdefault((item.project_id, item.event.event_id), index)
    unique = [items[i] for i in sorted(set(first_of.values()))]
    rows = [_event_row(i.project_id, i.event) for i in unique]
    # what a new issue starts with, per fingerprint: (project, fingerprint, type, platform,
    # grouping components) of its first event in the batch
    first_of_issue: dict[tuple[int, str], tuple[int, str, str | None, str, list[str]]] = {}
    for item in unique:
        e = item.event
        if (item.project_id, e.fingerprint) not in first_of_issue:
            first_of_issue[(item.project_id, e.fingerprint)] = (
                item.project_id,
                e.fingerprint,
                e.exception_type,
                e.platform,
                e.grouping_components,
            )
    issues = list(first_of_issue.values())
    if conn.dialect.name == "postgresql":
        stored = await repository.store_batch_pg(conn, rows, issues)
    else:
        stored = await _store_batch(conn, unique, rows, issues)
    # integer row ids, for the callers that answer with them (seed-002)
    row_ids = {key: row_id for key, (row_id, _) in stored.items()}
    wanted: dict[int, list[str]] = {}
    for item in items:
        if item.want_row_id and (item.project_id, item.event.event_id) not in row_ids:
            wanted.setdefault(item.project_id, []).append(item.event.event_id)  # a retry
    for project_id, event_ids in wanted.items():
        found = await repository.row_ids_by_event_id(
            conn, project_id=project_id, event_ids=event_ids
        )
        row_ids.update({(project_id, k): v for k, v in found.items()})

    results: list[ErrorWriteResult] = []
    for index, item in enumerate(items):
        key = (item.project_id, item.event.event_id)
        new = stored.get(key) if first_of[key] == index else None
        results.append(
            ErrorWriteResult(
                event_id=item.event.event_id,
                stored=new is not None,
                issue_id=new[1] if new is not None else None,
                row_id=row_ids.get(key),
            )
        )
    return results


async def _store_batch(
    conn: AsyncConnection,
    unique: list[ErrorWrite],
    rows: list[tuple[Any, ...]],
    issues: list[tuple[int, str, str | None, str, list[str]]],
) -> dict[tuple[int, str], tuple[int, int]]:
    """SQLite: the whole group in ONE thread hop of the driver (``bulk.sqlite_run``; in a group
    commit also its BEGIN and COMMIT): ``repository.store_batch_sqlite``, then the issues' new
    environments and releases. ``{(project_id, event_id): (row id, issue id)}`` of the events
    inserted, as :func:`repository.store_batch_pg` returns."""
    seen = _SEEN_VALUES.get(conn.engine.sync_engine)
    commits = not conn.in_transaction()  # an autocommit group: sqlite_run commits the hop
    batch = repository.prepare_batch_sqlite(rows, issues)  # the Python work, before the hop
    with quick_gil_handoffs():  # the hop is SQLite's own work, and its GIL re-takes
        stored, fresh = await bulk.sqlite_run(
            conn, lambda db: _store_batch_sqlite(db, unique, batch, seen.pairs if seen else set())
        )
    if fresh and seen is not None:
        if commits:
            seen.add(fresh)
        else:
            seen.pending(conn, fresh)
    return stored


def _store_batch_sqlite(
    db: sqlite3.Connection,
    unique: list[ErrorWrite],
    batch: repository.SqliteBatch,
    seen: set[tuple[int, str, str]],
) -> tuple[dict[tuple[int, str], tuple[int, int]], set[tuple[int, str, str]]]:
    """:func:`_store_batch` on the driver's thread; also returns the (issue, kind, value) pairs
    it stored that ``seen`` did not have."""
    stored = repository.store_batch_sqlite(db, batch)
    values: dict[tuple[int, str, str], datetime] = {}
    for item in unique:
        e = item.event
        new = stored.get((item.project_id, e.event_id))
        if new is None:
            continue
        for kind, value in (("environment", e.environment), ("release", e.release)):
            if value:
                k = (new[1], kind, value)
                if k not in seen:
                    values[k] = min(values.get(k, e.timestamp), e.timestamp)
    if values:
        repository.insert_issue_values_sqlite(db, [(*k, ts) for k, ts in values.items()])
    return stored, set(values)


# ---------------------------------------------------------------------------------------------
# Ingestion: seed-002 error reports
# ---------------------------------------------------------------------------------------------


def _validation_error(exc: ValidationError) -> AppError:
    errors = [
        {
            "field": ".".join(str(p) for p in err.get("loc", ())) or "body",
            "message": err.get("msg", "invalid"),
        }
        for err in exc.errors()
    ]
    first = errors[0]
    return AppError(
        422, "validation_error", f"{first['field']}: {first['message']}", extra={"errors": errors}
    )


async def _project_for_report(
    db: Database, settings: Settings, principal: Principal | None, project_key: str
) -> Project:
    async with db.read_session() as session:
        if project_key.startswith(PUBLIC_KEY_PREFIX):
            # The project's public key in project_key is itself an ingest credential.
            project = await projects_repo.get_by_public_key(session, project_key)
            if project is None:
                raise AppError(
                    401, "invalid_key", "project_key looks like a public key but matches no project"
                )
            if (
                principal is not None
                and principal.kind != "local"
                and not principal.may_write(project.id)
            ):
                raise _not_writable(project_key)
            return project
        project = await get_project(session, project_key)
        if project is None and slugify(project_key) != project_key:
            project = await get_project(session, slugify(project_key))
    if project is not None:
        if principal is None:
            raise AppError(
                401,
                "authentication_required",
                "Send the project's key: 'Authorization: Bearer <key>', 'X-API-Key', or the "
                "public key (pk_...) as project_key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not principal.may_write(project.id):
            raise _not_writable(project_key)
        return project
    if settings.is_local and principal is not None and principal.kind == "local":
        async with db.session() as session:
            return await get_or_create_by_slug(session, slug=slugify(project_key), name=project_key)
    if principal is None:
        raise AppError(
            401,
            "authentication_required",
            f"Project {project_key!r} does not exist, and this request has no credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    raise AppError(
        404,
        "project_not_found",
        f"Project {project_key!r} does not exist; create it first (gati project create "
        f"{project_key!r}) and send its key. Only local mode creates projects on first use",
    )


def _not_writable(project_key: str) -> AppError:
    return AppError(
        404,
        "project_not_found",
        f"Project {project_key!r} does not exist or is not writable with these credentials",
    )


def _scrub_nul(value: Any) -> Any:
    """PostgreSQL text and JSONB refuse NUL characters; drop them from strings."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_scrub_nul(k): _scrub_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_nul(v) for v in value]
    return value


async def store_error_report(
    body: Mapping[str, Any],
    *,
    db: Database,
    settings: Settings,
    committer: GroupCommitter,
    principal: Principal | None,
    runtime: ErrorsRuntime | None = None,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """Seed 002: validate, resolve the project (local mode creates it), group, store (group
    commit) and answer the seed's ``{"id", "timestamp", "message"}`` once committed."""
    try:
        report = ErrorReportIn.model_validate(body)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if "\x00" in report.project_key:
        # An identifier, not text to keep: refused (the report's text fields are scrubbed).
        field_error = {"field": "project_key", "message": NUL_REASON}
        raise AppError(
            422,
            "validation_error",
            f"project_key: {NUL_REASON}",
            extra={"errors": [field_error]},
        )
    project = await _project_for_report(db, settings, principal, report.project_key)
    if runtime is not None:
        await check_rate_limit(runtime, settings, _ref(project), cost=1, sentry_headers=False)
    data = report.model_dump(exclude_none=True)
    if any("\x00" in v for v in data.values() if isinstance(v, str)):
        data = _scrub_nul(data)
    event = normalize_error_report(data, received_at=received_at or utcnow())
    result: ErrorWriteResult = await committer.submit(
        WRITER_KIND, ErrorWrite(project_id=project.id, event=event, want_row_id=True)
    )
    return {"id": result.row_id, "timestamp": event.timestamp, "message": event.message}


async def ingest_error_report(
    *, request: Request, body: Mapping[str, Any], principal: Principal | None
) -> dict[str, Any]:
    """The entry point of the shared ``POST /api/v1/events`` route for seed-002 error reports
    (see ``gati.events.dispatch``): takes the app's database, settings, group committer and rate
    limiter from ``request.app.state`` and returns the seed's ``{"id", "timestamp", "message"}``
    body (to send with 201). ``principal`` is the caller (``gati.auth.deps``)."""
    state = request.app.state
    return await store_error_report(
        body,
        db=state.db,
        settings=state.settings,
        committer=state.committer,
        principal=principal,
        runtime=getattr(state, "errors", None),
    )


# ---------------------------------------------------------------------------------------------
# Ingestion: the Sentry protocol
# ---------------------------------------------------------------------------------------------


async def project_for_sentry_key(
    db: Database, runtime: ErrorsRuntime, key: str
) -> ProjectRef | None:
    known, cached = runtime.cached_project(key)
    if known:
        return cached
    if "\x00" in key:
        return None  # no key has one (and PostgreSQL refuses the parameter)
    return await runtime.lookups.run(
        key, partial(_lookup_project, db, runtime, key, runtime.generation)
    )


async def _lookup_project(
    db: Database, runtime: ErrorsRuntime, key: str, generation: int
) -> ProjectRef | None:
    async with db.read_session() as session:
        project: Project | None
        if key.startswith(PUBLIC_KEY_PREFIX):
            project = await projects_repo.get_by_public_key(session, key)
        else:
            api_key = await projects_repo.get_key_by_hash(session, hash_api_key(key))
            project = (
                await projects_repo.get_by_id(session, api_key.project_id)
                if api_key is not None and api_key.revoked_at is None
                else None
            )
    ref = _ref(project) if project is not None else None
    if runtime.generation == generation:
        runtime.remember_project(key, ref)
    return ref


async def authenticate_sentry(
    *,
    db: Database,
    runtime: ErrorsRuntime,
    url_project_id: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    envelope_dsn: str | None,
) -> ProjectRef:
    credentials = extract_sentry_credentials(
        headers=headers, query=query, envelope_dsn=envelope_dsn
    )
    if credentials is None:
        raise SentryAuthError(
            "No Sentry key: send X-Sentry-Auth: Sentry sentry_key=<public key>, the sentry_key "
            "query parameter, or a dsn in the envelope header"
        )
    if credentials.dsn_project_id is not None and credentials.dsn_project_id != url_project_id:
        raise AppError(
            403,
            "project_mismatch",
            f"The envelope's DSN names project {credentials.dsn_project_id} but the URL names "
            f"project {url_project_id}",
        )
    project = await project_for_sentry_key(db, runtime, credentials.public_key)
    if project is None:
        raise SentryAuthError(
            f"Unknown Sentry key {credentials.public_key[:12]!r}...: no project has it"
        )
    if str(project.id) != url_project_id:
        raise AppError(
            403,
            "project_mismatch",
            f"This key belongs to another project than {url_project_id}; use the DSN of "
            f"project {url_project_id}",
        )
    return project


def _text(raw: bytes | None) -> str | None:
    """An item's JSON text, stored as is (it was parsed, so it is valid UTF-8 JSON)."""
    return raw.decode("utf-8") if raw is not None else None


async def ingest_sentry(
    *,
    endpoint: str,  # "envelope" | "store"
    url_project_id: str,
    body: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    db: Database,
    settings: Settings,
    committer: GroupCommitter,
    runtime: ErrorsRuntime,
    received_at: datetime | None = None,
) -> dict[str, Any]:
    """A decoded Sentry envelope or store body: authenticate, rate-limit, parse, normalize and
    store its error events (group commit). Other item types are accepted and skipped."""
    received_at = received_at or datetime.now(UTC)
    if not url_project_id.isdigit():
        raise AppError(
            404, "project_not_found", f"Project {url_project_id!r}: a DSN's project id is a number"
        )
    if endpoint == "envelope":
        envelope = parse_envelope(body)
        project = await authenticate_sentry(
            db=db,
            runtime=runtime,
            url_project_id=url_project_id,
            headers=headers,
            query=query,
            envelope_dsn=envelope.dsn,
        )
        raw_events: list[dict[str, Any]] = []
        raw_texts: list[bytes | None] = []
        for item in envelope.error_items():
            if len(item.payload) > settings.errors_max_event_bytes:
                raise AppError(
                    413,
                    "event_too_large",
                    f"item {item.index} (event) is {len(item.payload)} bytes; the limit is "
                    f"{settings.errors_max_event_bytes}",
                )
            raw_events.append(item.json_object())
            raw_texts.append(item.payload)
        answer_id = envelope.event_id
    else:
        project = await authenticate_sentry(
            db=db,
            runtime=runtime,
            url_project_id=url_project_id,
            headers=headers,
            query=query,
            envelope_dsn=None,
        )
        if len(body) > settings.errors_max_event_bytes:
            raise AppError(
                413,
                "event_too_large",
                f"The event is {len(body)} bytes; the limit is {settings.errors_max_event_bytes}",
            )
        event = parse_store_body(body, max_decompressed_bytes=settings.max_decompressed_bytes)
        raw_events = [] if event.get("type") == "transaction" else [event]
        raw_texts = [None] * len(raw_events)  # the body may be base64/zlib: re-serialize
        answer_id = None
    if b"\\u0000" in body:
        raw_events = [_scrub_nul(e) for e in raw_events]
        raw_texts = [None] * len(raw_events)
    events = [
        normalize_sentry_event(
            raw,
            received_at=received_at,
            envelope_event_id=answer_id if len(raw_events) == 1 else None,
            payload_json=_text(text),
            details=False,
        )
        for raw, text in zip(raw_events, raw_texts, strict=True)
    ]
    if not events:
        return {"id": answer_id} if answer_id else {}
    await check_rate_limit(runtime, settings, project, cost=len(events), sentry_headers=True)
    if len(events) == 1:
        result: ErrorWriteResult = await committer.submit(
            WRITER_KIND, ErrorWrite(project_id=project.id, event=events[0])
        )
        return {"id": result.event_id}
    results = [
        await committer.submit(WRITER_KIND, ErrorWrite(project_id=project.id, event=e))
        for e in events
    ]
    return {"id": results[0].event_id}


def dsn_for(project: Project, *, base_url: str) -> dict[str, Any]:
    dsn = build_dsn(base_url=base_url, public_key=project.public_key, project_id=project.id)
    base = base_url.rstrip("/")
    return {
        "project_id": project.id,
        "public_key": project.public_key,
        "dsn": dsn,
        "envelope_url": f"{base}/api/{project.id}/envelope/",
        "store_url": f"{base}/api/{project.id}/store/",
    }


# ---------------------------------------------------------------------------------------------
# Issues API
# ---------------------------------------------------------------------------------------------


def issue_dict(issue: Issue, values: Mapping[str, list[str]]) -> dict[str, Any]:
    return {
        "id": issue.id,
        "project_id": issue.project_id,
        "title": issue.title,
        "culprit": issue.culprit,
        "type": issue.type,
        "level": issue.level,
        "platform": issue.platform,
        "status": issue.status,
        "is_regressed": issue.is_regressed,
        "first_seen": issue.first_seen,
        "last_seen": issue.last_seen,
        "event_count": issue.event_count,
        "times_seen": issue.times_seen,
        "environments": values.get("environment", []),
        "releases": values.get("release", []),
        "fingerprint": issue.fingerprint,
        "grouping": issue.grouping,
        "resolved_at": issue.resolved_at,
        "status_changed_at": issue.status_changed_at,
    }


def _derived(event: ErrorEvent) -> NormalizedErrorEvent | None:
    """Frames, tags, user and breadcrumbs, derived from the stored payload by the same
    normalization as at ingest (they are not stored twice)."""
    payload = event.payload or {}
    try:
        if event.source == "report":
            return normalize_error_report(payload, received_at=event.received_at)
        return normalize_sentry_event(payload, received_at=event.received_at)
    except AppError:  # pragma: no cover - the payload was normalized once already
        return None


def event_dict(event: ErrorEvent, *, issue_id: int | None, with_payload: bool) -> dict[str, Any]:
    request = None
    if event.request_method or event.request_url or event.status_code is not None:
        request = {
            "method": event.request_method,
            "url": event.request_url,
            "status_code": event.status_code,
        }
    exception = None
    if event.exception_type or event.exception_value:
        exception = {"type": event.exception_type, "value": event.exception_value}
    derived = _derived(event)
    out: dict[str, Any] = {
        "id": event.id,
        "event_id": event.event_id,
        "project_id": event.project_id,
        "issue_id": issue_id,
        "timestamp": event.timestamp,
        "received_at": event.received_at,
        "source": event.source,
        "level": event.level,
        "platform": event.platform,
        "title": event.title,
        "culprit": event.culprit,
        "message": event.message,
        "exception": exception,
        "frames": derived.frames_as_dicts() if derived else [],
        "request": request,
        "transaction": event.transaction_name,
        "environment": event.environment,
        "release": event.release,
        "server_name": event.server_name,
        "tags": derived.tags if derived else {},
        "user": derived.user if derived else None,
        "breadcrumbs": derived.breadcrumbs if derived else [],
    }
    if with_payload:
        out["payload"] = event.payload
    return out


async def list_issues(
    session: AsyncSession,
    *,
    project_ids: Sequence[int],
    status: str | None,
    environment: str | None,
    release: str | None,
    text: str | None,
    sort: repository.IssueSort,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    rows, total = await repository.list_issues(
        session,
        project_ids=project_ids,
        status=status,
        environment=environment,
        release=release,
        text=text,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    values = await repository.issue_values(session, issue_ids=[r.id for r in rows])
    return {
        "items": [issue_dict(r, values.get(r.id, {})) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(rows) < total,
    }


async def _visible_issue(session: AsyncSession, *, principal: Principal, issue_id: int) -> Issue:
    issue = await repository.get_issue(session, project_ids=None, issue_id=issue_id)
    if issue is None or not principal.may_read(issue.project_id):
        raise AppError(
            404, "issue_not_found", f"Issue {issue_id} does not exist or is not visible to you"
        )
    return issue


async def get_issue(
    session: AsyncSession, *, principal: Principal, issue_id: int
) -> dict[str, Any]:
    issue = await _visible_issue(session, principal=principal, issue_id=issue_id)
    values = await repository.issue_values(session, issue_ids=[issue.id])
    return issue_dict(issue, values.get(issue.id, {}))


async def list_issue_events(
    session: AsyncSession, *, principal: Principal, issue_id: int, limit: int, offset: int
) -> dict[str, Any]:
    issue = await _visible_issue(session, principal=principal, issue_id=issue_id)
    rows, total = await repository.list_issue_events(
        session, issue=issue, limit=limit, offset=offset
    )
    return {
        "items": [event_dict(r, issue_id=issue.id, with_payload=False) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_more": offset + len(rows) < total,
    }


async def update_issue_status(
    session: AsyncSession, *, principal: Principal, issue_id: int, status: str
) -> dict[str, Any]:
    issue = await _visible_issue(session, principal=principal, issue_id=issue_id)
    if not principal.may_write(issue.project_id):
        raise AppError(
            403, "write_not_allowed", f"These credentials may read but not change issue {issue_id}"
        )
    await repository.set_issue_status(session, issue=issue, status=status, now=utcnow())
    values = await repository.issue_values(session, issue_ids=[issue.id])
    return issue_dict(issue, values.get(issue.id, {}))


async def get_error_event(
    session: AsyncSession, *, project_ids: Sequence[int], ident: str
) -> dict[str, Any]:
    row_id: int | None = None
    event_id: str | None = None
    if ident.isdigit() and len(ident) < 19:
        row_id = int(ident)
    else:
        compact = ident.replace("-", "").lower()
        if len(compact) == 32 and all(ch in "0123456789abcdef" for ch in compact):
            event_id = compact
    found = None
    if row_id is not None or event_id is not None:
        found = await repository.get_error_event(
            session, project_ids=project_ids, row_id=row_id, event_id=event_id
        )
    if found is None:
        raise AppError(
            404,
            "error_event_not_found",
            f"Error event {ident} does not exist or is not visible to you (use the numeric id "
            "or the 32-character event_id)",
        )
    event, issue_id = found
    return event_dict(event, issue_id=issue_id, with_payload=True)


# ---------------------------------------------------------------------------------------------
# Per-project error settings: retention and rate limit
# ---------------------------------------------------------------------------------------------


def error_settings_dict(
    project_id: int, project_settings: Mapping[str, Any], settings: Settings
) -> dict[str, Any]:
    own_limit = project_settings.get("error_rate_limit")
    limit = own_limit if own_limit is not None else settings.errors_rate_limit
    if isinstance(limit, str) and limit.strip().lower() in ("", "off", "none", "0"):
        limit = None
    return {
        "project_id": project_id,
        "retention_days": retention_days(settings, project_settings),
        "retention_days_is_default": not any(
            isinstance(project_settings.get(k), int) for k in _RETENTION_KEYS
        ),
        "rate_limit": limit,
        "rate_limit_is_default": own_limit is None,
    }


async def get_error_settings(
    session: AsyncSession, *, project: Project, settings: Settings
) -> dict[str, Any]:
    return error_settings_dict(project.id, project.settings or {}, settings)


async def update_error_settings(
    session: AsyncSession,
    *,
    principal: Principal,
    project: Project,
    changes: Mapping[str, Any],
    settings: Settings,
    runtime: ErrorsRuntime | None,
) -> dict[str, Any]:
    """``changes``: the fields sent (``retention_days``, ``rate_limit``); ``None`` resets one."""
    if not principal.may_write(project.id):
        raise AppError(
            403,
            "write_not_allowed",
            f"These credentials may read but not change project {project.id}'s settings",
        )
    update: dict[str, Any] = {}
    if "retention_days" in changes:
        update["error_retention_days"] = changes["retention_days"]
    if "rate_limit" in changes:
        spec = changes["rate_limit"]
        if spec is not None:
            spec = spec.strip()
            if spec.lower() not in ("off", "none", "0"):
                try:
                    RateLimit.parse(spec)
                except ValueError as exc:
                    raise AppError(
                        422,
                        "validation_error",
                        f"rate_limit: {exc}; use 'COUNT/second|minute|hour[;burst=N]' or 'off'",
                        extra={"errors": [{"field": "rate_limit", "message": str(exc)}]},
                    ) from None
            else:
                spec = "off"
        update["error_rate_limit"] = spec
    merged = await repository.merge_project_settings(session, project_id=project.id, changes=update)
    if merged is None:
        raise AppError(404, "project_not_found", f"Project {project.id} does not exist")
    if runtime is not None:
        runtime.forget_projects()  # the key cache holds the projects' settings
    return error_settings_dict(project.id, merged, settings)


# ---------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------


_RETENTION_KEYS = ("error_retention_days", "retention_days")


def retention_days(settings: Settings, project_settings: Mapping[str, Any]) -> int:
    for key in _RETENTION_KEYS:
        value = project_settings.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return settings.errors_retention_days


async def apply_retention(
    db: Database, *, settings: Settings, now: datetime | None = None
) -> dict[int, int]:
    """Delete error events older than each project's retention; lower the issues' counts by what
    was deleted and drop issues left without events. Idempotent. Returns deleted per project."""
    now = now or utcnow()
    async with db.read_session() as session:
        projects = {p.id: p for p in await projects_repo.list_projects(session)}
    async with db.connection() as conn:
        project_ids = await repository.list_project_ids_with_errors(conn)
    deleted: dict[int, int] = {}
    for project_id in project_ids:
        project = projects.get(project_id)
        if project is None:
            continue
        cutoff = now - timedelta(days=retention_days(settings, project.settings or {}))
        while True:
            async with db.connection() as conn:
                counts = await repository.delete_events_before(
                    conn, project_id=project_id, cutoff=cutoff, limit=RETENTION_CHUNK
                )
                await repository.subtract_issue_counts(conn, project_id=project_id, counts=counts)
                await repository.delete_empty_issues(
                    conn, project_id=project_id, fingerprints=counts.keys(), cutoff=cutoff
                )
            n = sum(counts.values())
            deleted[project_id] = deleted.get(project_id, 0) + n
            if n < RETENTION_CHUNK:
                break
    return deleted


__all__ = [
    "WRITER_KIND",
    "EnvelopeError",
    "ErrorWrite",
    "ErrorWriteResult",
    "ErrorsRuntime",
    "apply_retention",
    "ingest_error_report",
    "ingest_sentry",
    "store_error_report",
    "write_error_batch",
]
