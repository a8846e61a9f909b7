"""Per-app state of web analytics, kept in ``app.state.web``."""

from __future__ import annotations

from dataclasses import dataclass, field

from gati.web.client_ip import TrustedProxies
from gati.web.geoip import CountryLookup, NoCountries
from gati.web.sites import SaltCache, SiteCache


@dataclass
class WebState:
    trusted: TrustedProxies = field(default_factory=TrustedProxies)
    auto_create_sites: bool = False
    countries: CountryLookup = field(default_factory=NoCountries)
    sites: SiteCache = field(default_factory=SiteCache)
    salts: SaltCache = field(default_factory=SaltCache)
