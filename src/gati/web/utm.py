"""UTM parameters, from the payload's ``attribution.utmParams`` or from the page URL."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

UTM_KEYS: tuple[str, ...] = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_UTM_LENGTH = 255


def _clean(value: object) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text[:MAX_UTM_LENGTH] if text else None


def utm_from_url(url: str | None) -> dict[str, str]:
    """UTM parameters in the query string of ``url`` (first value of each wins)."""
    return dict(_url_utm(url)) if url else {}


@lru_cache(maxsize=4096)
def _url_utm(url: str) -> tuple[tuple[str, str], ...]:
    """Cached (page URLs repeat): immutable, so that no caller can change a cached value."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return ()
    found: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=False):
        name = key.strip().lower()
        if name in UTM_KEYS and name not in found:
            cleaned = _clean(value)
            if cleaned is not None:
                found[name] = cleaned
    return tuple(found.items())


def extract_utm(attribution: Mapping[str, object] | None, url: str | None) -> dict[str, str]:
    """UTM parameters for one event.

    Each key comes from ``attribution`` (what the client sent) when present, otherwise from the
    page URL. Keys are the five standard ``utm_*`` names; others are ignored.
    """
    result: dict[str, str] = {}
    if attribution:
        for key, value in attribution.items():
            name = str(key).strip().lower()
            if name in UTM_KEYS:
                cleaned = _clean(value)
                if cleaned is not None:
                    result[name] = cleaned
    for key, value in _url_utm(url) if url else ():
        result.setdefault(key, value)
    return {key: result[key] for key in UTM_KEYS if key in result}
