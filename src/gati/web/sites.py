"""Site settings (kept in the project's ``settings`` JSON) and the in-process caches that keep
/collect from reading the database for every request: sites and daily salts."""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from gati.projects.schemas import check_slug
from gati.projects.service import project_id_of, slugify
from gati.web.client_ip import IPStorageMode
from gati.web.periods import zone
from gati.web.referrer import referrer_host

DEFAULT_TIMEZONE = "UTC"
DEFAULT_IP_MODE = IPStorageMode.TRUNCATED
SITE_CACHE_SECONDS = 10.0
# Keys of ``projects.settings`` owned by web analytics.
SETTINGS_KEYS = ("timezone", "hostnames", "ip_mode")
SLUG_RULE = (
    "sites are created automatically only for slugs: 1 to 100 lowercase letters, digits, '.', "
    "'_' or '-', starting with a letter or digit, not ending with '-', and not only digits "
    "(a number names a project id)"
)
_HOSTNAME = re.compile(r"[\w-]+(?:\.[\w-]+)*")


@dataclass(frozen=True, slots=True)
class SiteSettings:
    timezone: str = DEFAULT_TIMEZONE
    hostnames: tuple[str, ...] = ()
    ip_mode: IPStorageMode = DEFAULT_IP_MODE

    @classmethod
    def from_project(cls, settings: dict[str, Any] | None) -> SiteSettings:
        settings = settings or {}
        timezone = settings.get("timezone") or DEFAULT_TIMEZONE
        try:
            zone(str(timezone))
        except Exception:
            timezone = DEFAULT_TIMEZONE
        hostnames = tuple(
            h for h in (normalise_hostname(str(x)) for x in settings.get("hostnames") or []) if h
        )
        try:
            ip_mode = IPStorageMode(settings.get("ip_mode") or DEFAULT_IP_MODE)
        except ValueError:
            ip_mode = DEFAULT_IP_MODE
        return cls(str(timezone), hostnames, ip_mode)

    def as_dict(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "hostnames": list(self.hostnames),
            "ip_mode": self.ip_mode.value,
        }

    def allows_host(self, host: str | None) -> bool:
        """Any host when no hostnames are configured; else the hostnames and their subdomains."""
        if not self.hostnames:
            return True
        if not host:
            return False
        host = host.lower().rstrip(".")
        return any(host == h or host.endswith("." + h) for h in self.hostnames)


def normalise_hostname(value: str) -> str | None:
    """``https://www.Example.com/x`` or ``example.com`` -> ``example.com``."""
    text = value.strip()
    if not text:
        return None
    host = referrer_host(text)
    return host


def valid_hostname(host: str) -> bool:
    """A DNS name (letters, digits, ``-``, ``_``; internationalised letters too) or an IP
    address: what a page's host can be. Checked when hostnames are set, so that a typo (a space,
    a wildcard, a control character) is refused instead of never matching."""
    if _HOSTNAME.fullmatch(host):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def origin_host(origin: str | None) -> str | None:
    """The host of an ``Origin`` header; None when it is absent, ``null`` or unparsable.
    Browsers always send a valid origin, so an unparsable one counts as no origin."""
    if not origin:
        return None
    try:
        host = urlsplit(origin.strip()).hostname
    except ValueError:
        return None
    return host or None


def project_id_ref(ref: str) -> int | None:
    """The project id a site reference spells (``gati.projects.service.project_id_of``)."""
    return project_id_of(ref)


def creatable_slug(ref: str) -> bool:
    """True when local mode may create a site for this unknown ``siteId``: a valid project slug
    that is stored as sent (so the next request finds it by the same text), never a number."""
    try:
        check_slug(ref)
    except ValueError:
        return False
    return slugify(ref) == ref


@dataclass(frozen=True, slots=True)
class Site:
    project_id: int
    slug: str
    public_key: str
    settings: SiteSettings


@dataclass
class SiteCache:
    """``siteId`` (slug or public key) -> Site, for a few seconds."""

    ttl: float = SITE_CACHE_SECONDS
    _entries: dict[str, tuple[float, Site | None]] = field(default_factory=dict)

    def get(self, ref: str) -> tuple[bool, Site | None]:
        entry = self._entries.get(ref)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, ref: str, site: Site | None) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        # Unknown sites are remembered briefly too, so that a flood of them stays cheap.
        self._entries[ref] = (time.monotonic() + (self.ttl if site else 2.0), site)

    def forget(self, project_id: int) -> None:
        for key, (_, site) in list(self._entries.items()):
            if site is None or site.project_id == project_id:
                self._entries.pop(key, None)


@dataclass
class SaltCache:
    """The salts of today and yesterday (UTC), refreshed when the day changes."""

    day: date | None = None
    today: bytes = b""
    yesterday: bytes | None = None

    def current(self, now: datetime) -> tuple[bytes, bytes | None] | None:
        if self.day == now.date():
            return self.today, self.yesterday
        return None

    def set(self, day: date, today: bytes, yesterday: bytes | None) -> None:
        self.day, self.today, self.yesterday = day, today, yesterday

    @staticmethod
    def previous(day: date) -> date:
        return day - timedelta(days=1)
