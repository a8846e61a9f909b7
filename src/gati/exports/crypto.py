"""Encryption at rest for export credentials (Fernet: AES-128-CBC + HMAC-SHA256, timestamped).

The key comes from ``ENCRYPTION_KEY``: a Fernet key (``Fernet.generate_key()``) or any passphrase,
which is stretched with HKDF-SHA256. Several comma-separated keys rotate: the first encrypts,
all decrypt (``MultiFernet``). Without ``ENCRYPTION_KEY`` the key is derived from ``SECRET_KEY``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_HKDF_SALT = b"gati-export-credentials-v1"


class CredentialDecryptError(Exception):
    """Stored credentials cannot be decrypted with the configured keys."""


def _fernet_for(material: str) -> Fernet:
    material = material.strip()
    try:
        raw = base64.urlsafe_b64decode(material.encode("ascii"))
        if len(raw) == 32:
            return Fernet(material.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=b"fernet").derive(
        material.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class CredentialCipher:
    def __init__(self, keys: str) -> None:
        parts = [part for part in keys.split(",") if part.strip()]
        if not parts:
            raise ValueError("ENCRYPTION_KEY is empty")
        self._fernet = MultiFernet([_fernet_for(part) for part in parts])

    @classmethod
    def from_settings(cls, *, encryption_key: str | None, secret_key: str) -> CredentialCipher:
        return cls(encryption_key or secret_key)

    def encrypt(self, credentials: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(credentials)).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            plain = self._fernet.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError) as exc:
            raise CredentialDecryptError(
                "stored export credentials cannot be decrypted: ENCRYPTION_KEY (or SECRET_KEY) "
                "changed; add the old key after the new one, comma-separated, or enter the "
                "credentials again"
            ) from exc
        value = orjson.loads(plain)
        if not isinstance(value, dict):
            raise CredentialDecryptError("stored export credentials are not an object")
        return value

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the first (newest) key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")
