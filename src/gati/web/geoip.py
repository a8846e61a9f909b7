"""Country lookup in a MaxMind-format database (GeoLite2-Country / GeoIP2-Country / DB-IP lite),
read with MaxMind's ``maxminddb`` reader. Optional: without ``GEOIP_DATABASE`` countries are
empty."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from gati.web.client_ip import IPAddress

log = logging.getLogger(__name__)


class CountryLookup(Protocol):
    def country(self, address: IPAddress | None) -> str | None: ...

    def close(self) -> None: ...


class NoCountries:
    def country(self, address: IPAddress | None) -> str | None:
        return None

    def close(self) -> None:
        pass


class MaxMindCountries:
    def __init__(self, path: Path) -> None:
        try:
            import maxminddb
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError(
                "GEOIP_DATABASE is set but the maxminddb package is not installed: "
                "pip install 'gati[geoip]'"
            ) from exc
        if not path.is_file():
            raise RuntimeError(f"GEOIP_DATABASE: {path} does not exist or is not a file")
        self._reader: Any = maxminddb.open_database(str(path))

    def country(self, address: IPAddress | None) -> str | None:
        if address is None or address.is_private or address.is_loopback:
            return None
        try:
            record = self._reader.get(str(address))
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            value = record.get(key)
            if isinstance(value, dict):
                code = value.get("iso_code")
                if isinstance(code, str) and len(code) == 2:
                    return code.upper()
        return None

    def close(self) -> None:
        self._reader.close()


def open_country_lookup(path: Path | None) -> CountryLookup:
    if path is None:
        return NoCountries()
    return MaxMindCountries(path)
