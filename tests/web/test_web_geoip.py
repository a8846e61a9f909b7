"""Countries from a MaxMind-format database (GEOIP_DATABASE), written for the test with
mmdb-writer and read by MaxMind's maxminddb reader."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gati.db.engine import Database
from tests.web.helpers import IPHONE, send, stored_events

pytest.importorskip("maxminddb")


@pytest.fixture
def country_db(tmp_path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-Country")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "GB"}})
    writer.insert_network(IPSet(["2a01:e0a::/32"]), {"country": {"iso_code": "FR"}})
    writer.insert_network(IPSet(["5.45.0.0/16"]), {"registered_country": {"iso_code": "DE"}})
    path = tmp_path / "countries.mmdb"
    writer.to_db_file(str(path))
    return path


async def test_countries_are_stored_and_broken_down(
    make_app: Callable[..., Any], make_project: Callable[..., Any], db: Database, country_db: Path
) -> None:
    project = await make_project()
    slug = project["slug"]
    async with make_app(trusted_proxies=["127.0.0.1"], geoip_database=str(country_db)) as client:
        for ip, path in [
            ("81.2.69.142", "/uk"),
            ("2a01:e0a::1", "/fr"),
            ("5.45.1.1", "/de"),
            ("8.8.8.8", "/unknown"),
        ]:
            await send(
                client,
                slug,
                ua=IPHONE + ip,
                url=f"https://a.io{path}",
                headers={"x-forwarded-for": ip},
            )
        countries = {e.path: e.country for e in await stored_events(db, project["id"])}
        assert countries == {"/uk": "GB", "/fr": "FR", "/de": "DE", "/unknown": None}
        response = await client.get(
            f"/api/v1/sites/{slug}/stats/breakdown",
            params={"property": "country", "period": "day", "metrics": "visitors"},
        )
        rows = {r["country"]: r["visitors"] for r in response.json()["results"]}
        assert rows == {"GB": 1, "FR": 1, "DE": 1, "(none)": 1}
        filtered = await client.get(
            f"/api/v1/sites/{slug}/stats/aggregate",
            params={"period": "day", "filters": "country==GB|FR", "metrics": "visitors"},
        )
        assert filtered.json()["results"]["visitors"]["value"] == 2


async def test_missing_database_file_fails_at_start(
    make_app: Callable[..., Any], tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="GEOIP_DATABASE"):
        async with make_app(geoip_database=str(tmp_path / "nope.mmdb")):
            pass
