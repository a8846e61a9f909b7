"""Referrer classification: which source (search engine, social network, other site, direct)
brought a visitor.

The table is deliberately short: it names the sources people look for in a dashboard. Every
other referring site is reported by its domain.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


class SourceType(enum.StrEnum):
    DIRECT = "direct"
    INTERNAL = "internal"
    SEARCH = "search"
    SOCIAL = "social"
    EMAIL = "email"
    CAMPAIGN = "campaign"
    REFERRAL = "referral"


DIRECT_LABEL = "Direct / None"


@dataclass(frozen=True, slots=True)
class Source:
    """``name`` is ``None`` for direct and internal traffic."""

    name: str | None
    type: SourceType
    referrer_domain: str | None


# (name, type, host pattern). A pattern matches the host or any of its subdomains; "*" stands
# for a top-level domain such as "com", "de" or "co.uk". Order matters: first match wins.
_RULES: tuple[tuple[str, SourceType, str], ...] = (
    ("Gmail", SourceType.EMAIL, "mail.google.com"),
    ("Outlook", SourceType.EMAIL, "outlook.live.com"),
    ("Outlook", SourceType.EMAIL, "outlook.office.com"),
    ("Yahoo Mail", SourceType.EMAIL, "mail.yahoo.com"),
    ("Google", SourceType.SEARCH, "google.*"),
    ("Google", SourceType.SEARCH, "com.google.android.googlequicksearchbox"),
    ("Bing", SourceType.SEARCH, "bing.com"),
    ("DuckDuckGo", SourceType.SEARCH, "duckduckgo.com"),
    ("Yahoo!", SourceType.SEARCH, "yahoo.*"),
    ("Yandex", SourceType.SEARCH, "yandex.*"),
    ("Yandex", SourceType.SEARCH, "ya.ru"),
    ("Baidu", SourceType.SEARCH, "baidu.com"),
    ("Ecosia", SourceType.SEARCH, "ecosia.org"),
    ("Brave", SourceType.SEARCH, "search.brave.com"),
    ("Startpage", SourceType.SEARCH, "startpage.com"),
    ("Qwant", SourceType.SEARCH, "qwant.com"),
    ("Kagi", SourceType.SEARCH, "kagi.com"),
    ("Naver", SourceType.SEARCH, "naver.com"),
    ("Seznam", SourceType.SEARCH, "seznam.cz"),
    ("Sogou", SourceType.SEARCH, "sogou.com"),
    ("Facebook", SourceType.SOCIAL, "facebook.com"),
    ("Facebook", SourceType.SOCIAL, "fb.com"),
    ("Facebook", SourceType.SOCIAL, "fb.me"),
    ("Instagram", SourceType.SOCIAL, "instagram.com"),
    ("Twitter", SourceType.SOCIAL, "twitter.com"),
    ("Twitter", SourceType.SOCIAL, "t.co"),
    ("Twitter", SourceType.SOCIAL, "x.com"),
    ("LinkedIn", SourceType.SOCIAL, "linkedin.com"),
    ("LinkedIn", SourceType.SOCIAL, "lnkd.in"),
    ("Reddit", SourceType.SOCIAL, "reddit.com"),
    ("YouTube", SourceType.SOCIAL, "youtube.com"),
    ("YouTube", SourceType.SOCIAL, "youtu.be"),
    ("Pinterest", SourceType.SOCIAL, "pinterest.*"),
    ("TikTok", SourceType.SOCIAL, "tiktok.com"),
    ("Hacker News", SourceType.SOCIAL, "news.ycombinator.com"),
    ("Bluesky", SourceType.SOCIAL, "bsky.app"),
    ("Threads", SourceType.SOCIAL, "threads.net"),
    ("Mastodon", SourceType.SOCIAL, "mastodon.social"),
    ("WhatsApp", SourceType.SOCIAL, "whatsapp.com"),
    ("WhatsApp", SourceType.SOCIAL, "wa.me"),
    ("Telegram", SourceType.SOCIAL, "t.me"),
    ("Telegram", SourceType.SOCIAL, "telegram.org"),
    ("Discord", SourceType.SOCIAL, "discord.com"),
    ("VKontakte", SourceType.SOCIAL, "vk.com"),
    ("Quora", SourceType.SOCIAL, "quora.com"),
    ("Tumblr", SourceType.SOCIAL, "tumblr.com"),
    ("ChatGPT", SourceType.REFERRAL, "chatgpt.com"),
    ("ChatGPT", SourceType.REFERRAL, "chat.openai.com"),
    ("Perplexity", SourceType.REFERRAL, "perplexity.ai"),
    ("GitHub", SourceType.REFERRAL, "github.com"),
)

# A top-level domain, possibly two-level ("co.uk", "com.br").
_TLD = r"(?:[a-z]{2,3}\.)?[a-z]{2,}"


def _compile(pattern: str) -> re.Pattern[str]:
    wildcard = pattern.endswith(".*")
    body = re.escape(pattern[:-2]) + r"\." + _TLD if wildcard else re.escape(pattern)
    return re.compile(r"(?:^|\.)" + body + r"$")


_COMPILED = tuple((name, kind, _compile(pattern)) for name, kind, pattern in _RULES)

# utm_source / ref values that name a known source ("google", "fb", "twitter" ...).
_ALIASES: dict[str, tuple[str, SourceType]] = {}
for _name, _kind, _pattern in _RULES:
    _labels = _pattern.removesuffix(".*").split(".")
    _keys = [_name.lower(), _name.lower().replace(" ", ""), _pattern.removesuffix(".*")]
    if len(_labels) <= 2 and len(_labels[0]) > 2:  # "google.*", "bing.com" -> "google", "bing"
        _keys.append(_labels[0])
    for _key in _keys:
        _ALIASES.setdefault(_key, (_name, _kind))
_ALIASES.update(
    {
        "fb": ("Facebook", SourceType.SOCIAL),
        "ig": ("Instagram", SourceType.SOCIAL),
        "hn": ("Hacker News", SourceType.SOCIAL),
        "x": ("Twitter", SourceType.SOCIAL),
    }
)

_STRIP_PREFIXES = ("www.", "m.", "l.", "lm.", "mobile.", "amp.")


def referrer_host(referrer: str | None) -> str | None:
    """The host of a referrer URL, lower-case, without ``www.``-like prefixes."""
    if not referrer:
        return None
    text = referrer.strip()
    try:
        parts = urlsplit(text if "://" in text else "http://" + text)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    changed = True
    while changed:
        changed = False
        for prefix in _STRIP_PREFIXES:
            if host.startswith(prefix) and host.count(".") >= 2:
                host = host[len(prefix) :]
                changed = True
    return host or None


def known_source(host: str) -> tuple[str, SourceType] | None:
    for name, kind, pattern in _COMPILED:
        if pattern.search(host):
            return name, kind
    return None


def _same_site(host: str, site_hosts: Iterable[str]) -> bool:
    for candidate in site_hosts:
        own = referrer_host(candidate)
        if own and (host == own or host.endswith("." + own)):
            return True
    return False


def classify(
    referrer: str | None,
    *,
    page_url: str | None = None,
    site_hostnames: Iterable[str] = (),
    utm_source: str | None = None,
) -> Source:
    """Classify where a visit came from.

    ``utm_source`` (or a ``ref`` parameter passed by the caller in its place) wins over the
    referrer. A referrer on the page's own host or on one of the site's hostnames is internal.
    """
    host = referrer_host(referrer)
    if utm_source:
        alias = _ALIASES.get(utm_source.strip().lower())
        if alias is not None:
            return Source(alias[0], alias[1], host)
        return Source(utm_source.strip(), SourceType.CAMPAIGN, host)
    if host is None:
        return Source(None, SourceType.DIRECT, None)
    own_hosts = [*site_hostnames, *([page_url] if page_url else [])]
    if _same_site(host, own_hosts):
        return Source(None, SourceType.INTERNAL, host)
    known = known_source(host)
    if known is not None:
        return Source(known[0], known[1], host)
    return Source(host, SourceType.REFERRAL, host)
