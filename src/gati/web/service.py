"""Rules of web analytics collection: site resolution, enrichment of a /collect event (client
IP, visitor id, user agent, UTM, source), and the batch writer that assigns visits."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from gati.db import bulk
from gati.db.bulk import AUTOCOMMIT_DRIVER
from gati.db.engine import Database
from gati.exceptions import AppError
from gati.ids import uuid_hex, uuid_str
from gati.projects import repository as projects_repository
from gati.projects import service as projects_service
from gati.projects.models import Project
from gati.web import repository
from gati.web.client_ip import IPAddress, TrustedProxies, client_ip, stored_ip
from gati.web.geoip import CountryLookup
from gati.web.payload import CollectPayload
from gati.web.periods import bad, zone
from gati.web.referrer import Source, SourceType, classify
from gati.web.sites import (
    SLUG_RULE,
    SaltCache,
    Site,
    SiteCache,
    SiteSettings,
    creatable_slug,
    normalise_hostname,
    origin_host,
    valid_hostname,
)
from gati.web.useragent import parse_user_agent
from gati.web.utm import extract_utm
from gati.web.visitor import new_salt, salt_day, visitor_hash

SESSION_TIMEOUT = timedelta(minutes=30)
PAGEVIEW = "pageview"
WRITER_KIND = "web_event"


def visitor_key(visitor_id: str) -> int:
    """A signed 64-bit digest of a visitor id (fits BIGINT; distinct counts on it are cheap)."""
    digest = hashlib.blake2b(visitor_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(project_id: int, kind: str, value: str) -> int:
    return visitor_key(f"{project_id}:{kind}:{value}")


# --- sites -----------------------------------------------------------------------------------


def _site(project: Any) -> Site:
    return Site(
        project_id=project.id,
        slug=project.slug,
        public_key=project.public_key,
        settings=SiteSettings.from_project(project.settings),
    )


async def find_project(session: AsyncSession, ref: str) -> Project | None:
    """The project a site reference names: its id, public key or slug. A number no id can be is
    looked up as a slug only (``projects.service.get_project``)."""
    return await projects_service.get_project(session, ref)


async def resolve_site(db: Database, cache: SiteCache, ref: str, *, auto_create: bool) -> Site:
    """The site a ``siteId`` names: a project slug, public key or id. Unknown: 404, unless
    ``auto_create`` (local mode) creates it, which it does for a slug only (see
    :func:`gati.web.sites.creatable_slug`)."""
    hit, site = cache.get(ref)
    if not hit:
        async with db.read_session() as session:
            project = await find_project(session, ref)
        site = _site(project) if project is not None else None
        if site is None and auto_create and creatable_slug(ref):
            async with db.session() as session:
                project = await projects_service.get_or_create_by_slug(session, slug=ref, name=ref)
                site = _site(project)
        cache.put(ref, site)
    if site is None:
        detail = (
            f"siteId {ref!r} is not a site of this server; create a project with this slug "
            "or use the project's public key as siteId"
        )
        if auto_create and not creatable_slug(ref):
            detail = f"siteId {ref!r} is not a site of this server, and {SLUG_RULE}"
        raise AppError(404, "site_not_found", detail)
    return site


async def get_settings(session: AsyncSession, project_id: int) -> SiteSettings:
    project = await projects_repository.get_by_id(session, project_id)
    if project is None:
        raise AppError(404, "site_not_found", f"Site {project_id} does not exist")
    return SiteSettings.from_project(project.settings)


async def update_settings(
    session: AsyncSession, *, project_id: int, changes: Mapping[str, Any]
) -> SiteSettings:
    """Validate and store ``timezone``, ``hostnames`` and ``ip_mode``; other keys of the
    project's settings are left alone."""
    project = await projects_repository.get_by_id(session, project_id)
    if project is None:
        raise AppError(404, "site_not_found", f"Site {project_id} does not exist")
    merged = dict(project.settings or {})
    if "timezone" in changes and changes["timezone"] is not None:
        merged["timezone"] = zone(str(changes["timezone"])).key
    if "hostnames" in changes and changes["hostnames"] is not None:
        hosts = []
        for raw in changes["hostnames"]:
            host = normalise_hostname(str(raw))
            if host is None or not valid_hostname(host):
                raise bad("hostnames", f"{raw!r} is not a hostname")
            hosts.append(host)
        merged["hostnames"] = sorted(set(hosts))
    if "ip_mode" in changes and changes["ip_mode"] is not None:
        merged["ip_mode"] = str(changes["ip_mode"])
    await repository.update_project_settings(session, project_id=project_id, settings=merged)
    return SiteSettings.from_project(merged)


# --- salts -----------------------------------------------------------------------------------


async def daily_salts(db: Database, cache: SaltCache, now: datetime) -> tuple[bytes, bytes | None]:
    """Today's salt (created on first use, shared by every process through the database) and
    yesterday's (for visits that cross midnight UTC). Older salts are deleted."""
    cached = cache.current(now)
    if cached is not None:
        return cached
    today = salt_day(now)
    yesterday = SaltCache.previous(today)
    async with db.connection() as conn:
        salts = await repository.get_salts(conn, [today, yesterday])
        if today not in salts:
            await repository.insert_salt(conn, day=today, salt=new_salt(), now=now)
            await repository.delete_salts_before(conn, yesterday)
            salts = await repository.get_salts(conn, [today, yesterday])
    cache.set(today, salts[today], salts.get(yesterday))
    return salts[today], salts.get(yesterday)


# --- enrichment ------------------------------------------------------------------------------


@dataclass(slots=True)
class EventRow:
    """One event ready for the writer. ``session_id`` is the client's, or None (assigned)."""

    values: dict[str, Any]
    client_session: str | None
    previous_visitor_id: str | None  # the same visitor under yesterday's salt
    client_event_id: bool = False  # the id is the client's ``eventId`` (a retry may repeat it)
    is_pageview: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_pageview = self.values["event_type"] == PAGEVIEW


@dataclass(frozen=True, slots=True)
class _Page:
    """What an event takes from its page URL besides UTM parameters."""

    hostname: str | None
    ref_param: str | None  # the first non-empty ?ref= or ?source= value


_NO_PAGE = _Page(None, None)


@lru_cache(maxsize=4096)
def _page(url: str) -> _Page:
    """Cached: page URLs repeat (a site's pages), and splitting one costs a few µs."""
    parts = urlsplit(url)
    ref_param = None
    for key, value in parse_qsl(parts.query):
        if key in ("ref", "source") and value.strip():
            ref_param = value.strip()[:255]
            break
    return _Page((parts.hostname or "").lower() or None, ref_param)


@lru_cache(maxsize=4096)
def _source(
    referrer: str | None, page_url: str | None, hostnames: tuple[str, ...], utm_source: str | None
) -> Source:
    """:func:`gati.web.referrer.classify`, cached: referrers repeat as pages do."""
    return classify(referrer, page_url=page_url, site_hostnames=hostnames, utm_source=utm_source)


@dataclass(frozen=True, slots=True)
class RequestMeta:
    peer: str | None
    headers: Mapping[str, str]
    user_agent: str | None
    origin: str | None


def build_event(
    payload: CollectPayload,
    *,
    site: Site,
    meta: RequestMeta,
    trusted: TrustedProxies,
    salts: tuple[bytes, bytes | None],
    countries: CountryLookup,
    now: datetime,
) -> EventRow:
    """Validate the event against its site and derive every stored field."""
    page = _page(payload.url) if payload.url else _NO_PAGE  # validated: it parses
    hostname = page.hostname
    check_host = hostname or origin_host(meta.origin)
    if not site.settings.allows_host(check_host):
        raise AppError(
            403,
            "hostname_not_allowed",
            f"Events from {check_host or 'an unknown host'!r} are not accepted for site "
            f"{site.slug!r}; its hostnames are {', '.join(site.settings.hostnames)}",
        )

    address: IPAddress | None = client_ip(meta.peer, meta.headers, trusted)
    ip_text = str(address) if address is not None else None
    agent = parse_user_agent(meta.user_agent)

    if payload.visitor_id:
        visitor_id, previous_visitor = payload.visitor_id, None
    else:
        today, yesterday = salts
        visitor_id = visitor_hash(
            salt=today, site=str(site.project_id), ip=ip_text, user_agent=meta.user_agent
        )
        previous_visitor = (
            visitor_hash(
                salt=yesterday, site=str(site.project_id), ip=ip_text, user_agent=meta.user_agent
            )
            if yesterday
            else None
        )

    utm = extract_utm(payload.utm_params, payload.url)
    # Plausible-style ?ref=producthunt / ?source=... links name a source too.
    source = _source(
        payload.referrer,
        payload.url,
        site.settings.hostnames,
        utm.get("utm_source") or page.ref_param,
    )
    timestamp = payload.timestamp or now
    event_id = payload.raw.get("eventId")
    client_event_id = isinstance(event_id, str) and 0 < len(event_id) <= 64
    if not client_event_id:
        event_id = uuid_str()

    values: dict[str, Any] = {
        "project_id": site.project_id,
        "id": event_id,
        "event_type": payload.event_type,
        "timestamp": timestamp,
        "received_at": now,
        "session_id": payload.session_id,
        "visitor_id": visitor_id,
        "visitor_key": visitor_key(visitor_id),
        "url": payload.url,
        "path": payload.path,
        "hostname": hostname,
        "referrer": payload.referrer,
        "title": payload.title,
        "source": source.name if source.type is not SourceType.INTERNAL else None,
        "utm_source": utm.get("utm_source"),
        "utm_medium": utm.get("utm_medium"),
        "utm_campaign": utm.get("utm_campaign"),
        "utm_term": utm.get("utm_term"),
        "utm_content": utm.get("utm_content"),
        "browser": agent.browser,
        "browser_version": agent.browser_version,
        "os": agent.os,
        "os_version": agent.os_version,
        "device": agent.device_type.value,
        "country": countries.country(address),
        "ip": stored_ip(address, site.settings.ip_mode),
        "is_bot": agent.is_bot,
        "properties": payload.properties or None,
        "raw": payload.raw,
    }
    return EventRow(values, payload.session_id, previous_visitor, client_event_id)


# --- submission ------------------------------------------------------------------------------

# SQLSTATEs meaning "the database cannot be reached or refuses connections right now":
# connection exceptions, shutdown/cannot-connect-now, too many connections, and a database
# that does not accept connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "55000")


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def database_unavailable() -> AppError:
    return AppError(
        503,
        "database_unavailable",
        "The database is unreachable; nothing was stored. Retry after the delay in Retry-After",
        headers={"Retry-After": "5"},
    )


async def submit(committer: Any, row: EventRow) -> str:
    """Hand ``row`` to the group committer; returns its event id once committed. A database
    that refuses connections is a 503 with Retry-After (the event was not stored)."""
    try:
        event_id: str = await committer.submit(WRITER_KIND, row)
    except AppError:
        raise
    except Exception as exc:
        state = _sqlstate(exc)
        if state is not None and state.startswith(_UNAVAILABLE_SQLSTATES):
            raise database_unavailable() from exc
        raise
    return event_id


# --- the batch writer: visits ----------------------------------------------------------------


@dataclass(slots=True)
class _Visit:
    project_id: int
    id: str
    visitor_id: str
    visitor_key: int
    started_at: datetime
    last_seen_at: datetime
    pageviews: int = 0
    events: int = 0
    entry_page: str | None = None
    exit_page: str | None = None
    exists: bool = False
    attributes: dict[str, Any] = field(default_factory=dict)
    # The stored state, to move the visit's contribution in the hourly rollups.
    stored: tuple[datetime, int, int] | None = None  # (started_at, pageviews, duration)
    # Bounds used while assigning events (they include events that turn out to be duplicates).
    lo: datetime | None = None
    hi: datetime | None = None
    touched: bool = False

    def accepts(self, moment: datetime) -> bool:
        lo = self.lo or self.started_at
        hi = self.hi or self.last_seen_at
        return lo - SESSION_TIMEOUT <= moment <= hi + SESSION_TIMEOUT

    def stretch(self, moment: datetime) -> None:
        self.lo = min(self.lo or self.started_at, moment)
        self.hi = max(self.hi or self.last_seen_at, moment)

    def apply(self, row: EventRow) -> None:
        moment: datetime = row.values["timestamp"]
        path = row.values["path"]
        first = not self.touched and not self.exists
        if first:
            self.started_at = self.last_seen_at = moment
        if row.is_pageview:
            if self.entry_page is None or moment <= self.started_at:
                self.entry_page = path
            if self.exit_page is None or moment >= self.last_seen_at:
                self.exit_page = path
            self.pageviews += 1
        self.events += 1
        self.started_at = min(self.started_at, moment)
        self.last_seen_at = max(self.last_seen_at, moment)
        self.touched = True

    @property
    def duration(self) -> int:
        return int((self.last_seen_at - self.started_at).total_seconds())

    def as_row(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "id": self.id,
            "visitor_id": self.visitor_id,
            "visitor_key": self.visitor_key,
            "started_at": self.started_at,
            "last_seen_at": self.last_seen_at,
            "duration": self.duration,
            "pageviews": self.pageviews,
            "events": self.events,
            "entry_page": self.entry_page,
            "exit_page": self.exit_page,
            **self.attributes,
        }


_VISIT_ATTRIBUTES = (
    "hostname", "referrer", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
    "utm_content", "browser", "os", "device", "country", "is_bot",
)  # fmt: skip


def _loaded(row: Mapping[str, Any]) -> _Visit:
    return _Visit(
        project_id=row["project_id"],
        id=row["id"],
        visitor_id=row["visitor_id"],
        visitor_key=row["visitor_key"],
        started_at=row["started_at"],
        last_seen_at=row["last_seen_at"],
        pageviews=row["pageviews"],
        events=row["events"],
        entry_page=row["entry_page"],
        exit_page=row["exit_page"],
        exists=True,
        attributes={name: row[name] for name in _VISIT_ATTRIBUTES},
        stored=(row["started_at"], row["pageviews"], row["duration"]),
    )


def _new_visit(row: EventRow, visit_id: str | None = None) -> _Visit:
    values = row.values
    return _Visit(
        project_id=values["project_id"],
        id=visit_id or "s_" + uuid_hex(),
        visitor_id=values["visitor_id"],
        visitor_key=values["visitor_key"],
        started_at=values["timestamp"],
        last_seen_at=values["timestamp"],
        attributes={name: values[name] for name in _VISIT_ATTRIBUTES},
    )


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# Rollup increments: pageviews, events, visits, bounces, duration, visit_changes.
_PV, _EV, _VISITS, _BOUNCES, _DURATION, _CHANGES = range(6)
_ZERO = (0, 0, 0, 0, 0, 0)


def _lock_keys(rows: Sequence[EventRow]) -> list[int]:
    """Advisory lock keys that serialise writers touching the same visitor, visit or client
    event id (PostgreSQL; SQLite has one writer). Under them, what the batch reads of its
    visitors' visits and of its client event ids cannot change before it commits."""
    keys: list[int] = []
    for row in rows:
        values = row.values
        project_id = values["project_id"]
        keys.append(lock_key(project_id, "v", values["visitor_id"]))
        if row.client_session:
            keys.append(lock_key(project_id, "s", row.client_session))
        elif row.previous_visitor_id:
            keys.append(lock_key(project_id, "v", row.previous_visitor_id))
        if row.client_event_id:
            keys.append(lock_key(project_id, "e", values["id"]))
    return keys


async def write_events(conn: AsyncConnection, rows: Sequence[EventRow]) -> list[str]:
    """The group-commit batch writer: assigns visits, stores new events, updates visits and
    hourly rollups (page views, events, and the visits by their start hour), all in the caller's
    transaction. Returns each row's event id.

    PostgreSQL: two statements whatever the batch size (three when a client sent ``eventId``):
    lock and look up the batch's visits, (look up client event ids,) write events, visits and
    rollups. In a group of its own kind (registered ``autocommit=True``: the committer begins
    no transaction) the writer begins and commits its own on asyncpg, and every statement goes
    straight to it: the same round trips without SQLAlchemy's transaction and cursor layers.

    SQLite: everything, the lookups and the writes, in ONE call on aiosqlite's thread
    (``bulk.sqlite_run``: between BEGIN IMMEDIATE and COMMIT in an autocommit group), as plain
    sqlite3 statements."""
    if conn.dialect.name == "sqlite":
        return await bulk.sqlite_run(conn, partial(_write_events_sqlite, rows))
    driver = conn.info.get(AUTOCOMMIT_DRIVER)
    if driver is None:
        return await _write_events_pg(conn, rows)
    async with driver.transaction():
        return await _write_events_pg(conn, rows, driver)


def _lookup_keys(
    rows: Sequence[EventRow],
) -> tuple[list[tuple[int, str]], list[tuple[int, str]], datetime, list[tuple[int, str]]]:
    """What a batch must read first: its visitors' open visits (today's and yesterday's ids),
    the visits its client session ids name, since when, and its client event ids."""
    visitor_keys: set[tuple[int, str]] = set()
    session_keys: set[tuple[int, str]] = set()
    client_ids: list[tuple[int, str]] = []
    earliest = rows[0].values["timestamp"]
    for row in rows:
        values = row.values
        project_id = values["project_id"]
        earliest = min(earliest, values["timestamp"])
        if row.client_session:
            session_keys.add((project_id, row.client_session))
        else:
            visitor_keys.add((project_id, values["visitor_id"]))
            if row.previous_visitor_id:
                visitor_keys.add((project_id, row.previous_visitor_id))
        if row.client_event_id:
            client_ids.append((project_id, values["id"]))
    return sorted(visitor_keys), sorted(session_keys), earliest - SESSION_TIMEOUT, client_ids


async def _write_events_pg(
    conn: AsyncConnection, rows: Sequence[EventRow], driver: Any = None
) -> list[str]:
    visitors, sessions, since, client_ids = _lookup_keys(rows)
    loaded = await repository.lock_and_load_visits(
        conn,
        driver=driver,
        lock_keys=_lock_keys(rows),
        visitors=visitors,
        sessions=sessions,
        since=since,
    )
    stored_ids = await repository.existing_event_ids(conn, client_ids) if client_ids else set()
    events, visits, rollups = _assign(rows, loaded, stored_ids)
    await repository.write_batch(conn, events=events, visits=visits, rollups=rollups)
    return [row.values["id"] for row in rows]


def _write_events_sqlite(rows: Sequence[EventRow], db: sqlite3.Connection) -> list[str]:
    """On aiosqlite's thread, in the transaction ``bulk.sqlite_run`` gives it."""
    visitors, sessions, since, client_ids = _lookup_keys(rows)
    loaded = repository.sqlite_load_visits(db, visitors=visitors, sessions=sessions, since=since)
    stored_ids = repository.sqlite_existing_event_ids(db, client_ids) if client_ids else set()
    events, visits, rollups = _assign(rows, loaded, stored_ids)
    repository.sqlite_write_batch(db, events=events, visits=visits, rollups=rollups)
    return [row.values["id"] for row in rows]


def _assign(
    rows: Sequence[EventRow],
    loaded: Iterable[Mapping[str, Any]],
    stored_ids: set[tuple[int, str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Assign each row to a visit (a loaded one it continues, or a new one) and compute what to
    write: the new events, the touched visits and the rollup increments."""
    order = sorted(range(len(rows)), key=lambda i: rows[i].values["timestamp"])
    by_visitor: dict[tuple[int, str], list[_Visit]] = {}
    by_id: dict[tuple[int, str], _Visit] = {}
    visitor_keys = {
        (row.values["project_id"], visitor)
        for row in rows
        if not row.client_session
        for visitor in (row.values["visitor_id"], row.previous_visitor_id)
        if visitor
    }
    for stored in loaded:
        visit = _loaded(stored)
        by_id[(visit.project_id, visit.id)] = visit
        if (visit.project_id, visit.visitor_id) in visitor_keys:
            by_visitor.setdefault((visit.project_id, visit.visitor_id), []).append(visit)

    visit_of: dict[int, _Visit] = {}
    for i in order:
        row = rows[i]
        values = row.values
        project_id = values["project_id"]
        moment = values["timestamp"]
        if row.client_session:
            visit_ref = (project_id, row.client_session)
            known = by_id.get(visit_ref)
            if known is None:
                known = by_id[visit_ref] = _new_visit(row, row.client_session)
            visit = known
        else:
            candidates = by_visitor.get((project_id, values["visitor_id"]), [])
            if row.previous_visitor_id:
                candidates = candidates + by_visitor.get((project_id, row.previous_visitor_id), [])
            found = [v for v in candidates if v.accepts(moment)]
            if found:
                visit = max(found, key=lambda v: v.hi or v.last_seen_at)
            else:
                visit = _new_visit(row)
                by_visitor.setdefault((project_id, visit.visitor_id), []).append(visit)
            if visit.visitor_id != values["visitor_id"]:  # continued across midnight
                values["visitor_id"] = visit.visitor_id
                values["visitor_key"] = visit.visitor_key
        visit.stretch(moment)
        values["session_id"] = visit.id
        visit_of[i] = visit

    # New events: not stored yet and not repeated within the batch (a retry may repeat an id).
    events: list[dict[str, Any]] = []
    seen: set[tuple[int, str]] = set()
    rollups: dict[tuple[int, datetime], list[int]] = {}
    touched: dict[tuple[int, str], _Visit] = {}
    for i in order:
        row = rows[i]
        key = (row.values["project_id"], row.values["id"])
        if key in seen or key in stored_ids:
            continue
        seen.add(key)
        events.append(row.values)
        visit = visit_of[i]
        visit.apply(row)
        touched[(visit.project_id, visit.id)] = visit
        if not row.values["is_bot"]:
            counts = rollups.setdefault((key[0], _hour(row.values["timestamp"])), [*_ZERO])
            counts[_PV] += 1 if row.is_pageview else 0
            counts[_EV] += 1

    # Visit metrics by the hour the visit started: move each touched visit's contribution.
    for visit in touched.values():
        if visit.attributes["is_bot"]:
            continue
        hour = _hour(visit.started_at)
        moved = True
        if visit.stored is not None:
            started, pageviews, duration = visit.stored
            moved = _hour(started) != hour
            counts = rollups.setdefault((visit.project_id, _hour(started)), [*_ZERO])
            counts[_VISITS] -= 1
            counts[_BOUNCES] -= 1 if pageviews <= 1 else 0
            counts[_DURATION] -= duration
            counts[_CHANGES] += 1 if moved else 0
        counts = rollups.setdefault((visit.project_id, hour), [*_ZERO])
        counts[_VISITS] += 1
        counts[_BOUNCES] += 1 if visit.pageviews <= 1 else 0
        counts[_DURATION] += visit.duration
        counts[_CHANGES] += 1 if moved else 0

    return (
        events,
        [v.as_row() for v in touched.values()],
        [
            {
                "project_id": pid,
                "hour": hour,
                "pageviews": c[_PV],
                "events": c[_EV],
                "visits": c[_VISITS],
                "bounces": c[_BOUNCES],
                "duration": c[_DURATION],
                "visit_changes": c[_CHANGES],
            }
            # Sorted: concurrent writers update shared rollup rows in one order (no deadlock).
            for (pid, hour), c in sorted(rollups.items())
            if any(c)
        ],
    )
