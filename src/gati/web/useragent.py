"""User-agent parsing (ua-parser) and bot / headless-browser detection."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

import ua_parser


class DeviceType(enum.StrEnum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    BOT = "bot"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_type: DeviceType
    is_bot: bool


# What ua-parser's regexes do not call a "Spider" but is still not a person: headless and
# automated browsers, HTTP libraries, command-line clients, monitors and preview fetchers.
# Substrings of the lower-cased user agent: ``in`` checks are ~20x faster than one
# case-insensitive alternation regex (which cost ~120 us per new user agent).
_NON_HUMAN_TOKENS = (
    "headless", "phantomjs", "slimerjs", "puppeteer", "playwright", "selenium", "webdriver",
    "lighthouse", "pagespeed", "pingdom", "uptimerobot", "statuscake", "site24x7", "gtmetrix",
    "bot/", "crawl", "spider", "scraper", "slurp", "mediapartners", "facebookexternalhit",
    "embedly", "curl/", "wget/", "httpie", "python-requests", "python-urllib", "python-httpx",
    "aiohttp", "go-http-client", "java/", "okhttp", "apache-httpclient", "node-fetch", "undici",
    "axios/", "libwww-perl", "ruby", "guzzlehttp", "postmanruntime", "insomnia", "dart:io",
)  # fmt: skip
# "...bot" ending a word (Googlebot, AhrefsBot), but not the Cubot phone brand.
_BOT_WORD = re.compile(r"(?<!cu)bot\b")


def _non_human(lowered: str) -> bool:
    if "bot" in lowered and _BOT_WORD.search(lowered):
        return True
    return any(token in lowered for token in _NON_HUMAN_TOKENS)


def _tablet_ua(lowered: str) -> bool:
    """iPad, tablets, Kindle/Silk, PlayBook, or Android without "mobile" after it."""
    if any(token in lowered for token in ("ipad", "tablet", "kindle", "silk/", "playbook")):
        return True
    last = lowered.rfind("android")
    return last >= 0 and "mobile" not in lowered[last + 7 :]


_TABLET_DEVICE = re.compile(r"ipad|tablet|kindle|silk|playbook|nexus (7|9|10)|sm-t\d", re.I)
_MOBILE_OS = {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS"}
_MOBILE_UA = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|blackberry|opera mini")
_DESKTOP_OS = {
    "Windows",
    "Mac OS X",
    "macOS",
    "Linux",
    "Ubuntu",
    "Fedora",
    "Chrome OS",
    "ChromeOS",
    "FreeBSD",
    "OpenBSD",
    "NetBSD",
    "Debian",
}

MAX_USER_AGENT_LENGTH = 1024

# ua-parser's fastest resolver without its own cache: parse_user_agent's lru_cache is the cache
# (a second cache in front of the resolver cost ~35 us per new user agent).
_PARSER = ua_parser.Parser(ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins()))


def _version(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return ".".join(kept) if kept else None


@lru_cache(maxsize=4096)
def parse_user_agent(user_agent: str | None) -> UserAgentInfo:
    """Browser, OS, device type and whether the client is a bot.

    An empty user agent is a bot: every browser sends one.
    """
    text = (user_agent or "").strip()[:MAX_USER_AGENT_LENGTH]
    if not text:
        return UserAgentInfo(None, None, None, None, DeviceType.BOT, True)

    result = _PARSER.parse(text)
    ua, os_, device = result.user_agent, result.os, result.device

    browser = ua.family if ua and ua.family != "Other" else None
    browser_version = _version(ua.major, ua.minor) if ua and browser else None
    os_name = os_.family if os_ and os_.family != "Other" else None
    os_version = _version(os_.major, os_.minor) if os_ and os_name else None

    lowered = text.lower()
    is_bot = (device is not None and device.family == "Spider") or _non_human(lowered)
    if is_bot:
        device_type = DeviceType.BOT
    elif (device is not None and _TABLET_DEVICE.search(device.family or "")) or _tablet_ua(lowered):
        device_type = DeviceType.TABLET
    elif os_name in _MOBILE_OS or _MOBILE_UA.search(lowered):
        device_type = DeviceType.MOBILE
    elif os_name in _DESKTOP_OS:
        device_type = DeviceType.DESKTOP
    else:
        device_type = DeviceType.UNKNOWN
    return UserAgentInfo(browser, browser_version, os_name, os_version, device_type, is_bot)
