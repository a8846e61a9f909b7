"""Client IP extraction behind trusted proxies, and what is stored of the IP.

Forwarding headers (``X-Forwarded-For``, ``X-Real-IP``, ``Forwarded``) are only believed when
the direct peer (the socket address) is one of the configured trusted proxies. Anything else
could be typed by the client itself, so it is ignored.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class IPStorageMode(enum.StrEnum):
    """How much of the client IP is kept in the events table."""

    FULL = "full"
    TRUNCATED = "truncated"  # IPv4 /24, IPv6 /48
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    """The set of peers whose forwarding headers are believed."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str] | str | None) -> TrustedProxies:
        """Build from IPs or CIDRs (a list or a comma-separated string).

        Raises ``ValueError`` naming the bad entry.
        """
        if entries is None:
            return cls()
        if isinstance(entries, str):
            entries = entries.split(",")
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"trusted proxy {entry!r} is not an IP address or CIDR network"
                ) from exc
        return cls(tuple(networks))

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        address = _unmap(address)
        return any(address in network for network in self.networks)


@lru_cache(maxsize=8192)
def parse_ip(value: str | None) -> IPAddress | None:
    """Parse one address as it may appear in a header: ``1.2.3.4``, ``1.2.3.4:5678``,
    ``[2001:db8::1]:443``, ``"[2001:db8::1]"``; ``None`` when it is not a valid address."""
    if not value:
        return None
    text = value.strip().strip('"').strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    if "%" in text:  # IPv6 zone id
        text = text.split("%", 1)[0]
    try:
        return _unmap(ipaddress.ip_address(text))
    except ValueError:
        return None


def _unmap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(header: str) -> list[str]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, in order."""
    values: list[str] = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, sep, value = pair.partition("=")
            if sep and name.strip().lower() == "for":
                values.append(value.strip())
    return values


def client_ip(
    peer: str | None,
    headers: Mapping[str, str],
    trusted: TrustedProxies,
) -> IPAddress | None:
    """The client's address.

    ``headers`` must be case-insensitive (Starlette's ``Headers`` is) or use lower-case keys.
    When ``peer`` is a trusted proxy, the forwarding chain is walked from the right (the hop
    nearest to us) past every trusted proxy; the first untrusted address is the client. A chain
    that is all trusted proxies yields its left-most address. Invalid entries stop the walk and
    the last valid address wins; with no usable header the peer address is returned.
    """
    peer_ip = parse_ip(peer)
    if peer_ip is None or peer_ip not in trusted:
        return peer_ip

    chain: list[str] = []
    forwarded = headers.get("forwarded")
    if forwarded:
        chain = _forwarded_for(forwarded)
    if not chain:
        xff = headers.get("x-forwarded-for")
        if xff:
            chain = [part for part in xff.split(",") if part.strip()]
    if not chain:
        real = parse_ip(headers.get("x-real-ip"))
        return real if real is not None else peer_ip

    current = peer_ip
    for raw in reversed(chain):
        hop = parse_ip(raw)
        if hop is None:
            # "unknown", obfuscated identifiers or garbage: nothing further left is reliable.
            return current
        current = hop
        if hop not in trusted:
            return hop
    return current


@lru_cache(maxsize=8192)
def stored_ip(address: IPAddress | None, mode: IPStorageMode | str) -> str | None:
    """What is written to storage for ``address`` under ``mode`` (cached: ``ipaddress`` is slow
    and a visitor's address repeats across its events)."""
    mode = IPStorageMode(mode)
    if address is None or mode is IPStorageMode.NONE:
        return None
    if mode is IPStorageMode.FULL:
        return str(address)
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return str(network.network_address)
