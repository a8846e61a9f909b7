"""Privacy-friendly visitor ids.

Without a client-provided ``visitorId`` the visitor is a keyed hash of a salt that rotates every
day, the site, the client IP and the user agent. The salt is random and is deleted after it has
been replaced (see :mod:`gati.web.repository`), so yesterday's hashes can never be recomputed and
no visitor can be followed across days. No cookie is set.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime

SALT_BYTES = 32
VISITOR_PREFIX = "v_"


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def salt_day(moment: datetime) -> date:
    """The UTC day whose salt applies at ``moment``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def visitor_hash(*, salt: bytes, site: str, ip: str | None, user_agent: str | None) -> str:
    """A stable id for one (site, ip, user agent) for as long as ``salt`` lives.

    BLAKE2b keyed with the salt; fields are length-prefixed so that no two different inputs
    can collide by concatenation.
    """
    if not salt:
        raise ValueError("salt must not be empty")
    digest = hashlib.blake2b(key=salt[:64], digest_size=16)
    for part in (site, ip or "", user_agent or ""):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(4, "big"))
        digest.update(encoded)
    return VISITOR_PREFIX + digest.hexdigest()
