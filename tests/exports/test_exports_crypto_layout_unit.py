"""Credential encryption at rest, object keys and manifests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.fernet import Fernet

from gati.exports.crypto import CredentialCipher, CredentialDecryptError
from gati.exports.layout import (
    manifest_key,
    normalize_prefix,
    object_key,
    safe_segment,
    window_stamp,
)

SECRET = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"}


def test_credentials_round_trip_and_are_not_readable_at_rest() -> None:
    cipher = CredentialCipher("a passphrase that is not a fernet key")
    token = cipher.encrypt(SECRET)
    assert "AKIAEXAMPLE" not in token and "wJalr" not in token
    assert cipher.decrypt(token) == SECRET
    assert cipher.encrypt(SECRET) != token  # random IV each time


def test_a_fernet_key_is_used_as_is() -> None:
    key = Fernet.generate_key().decode()
    token = CredentialCipher(key).encrypt(SECRET)
    assert Fernet(key.encode()).decrypt(token.encode()).startswith(b"{")


def test_wrong_key_fails_with_a_clear_error() -> None:
    token = CredentialCipher("key-one").encrypt(SECRET)
    with pytest.raises(CredentialDecryptError, match="ENCRYPTION_KEY"):
        CredentialCipher("key-two").decrypt(token)


def test_key_rotation_new_key_first_old_key_still_decrypts() -> None:
    old_token = CredentialCipher("old-key").encrypt(SECRET)
    rotated = CredentialCipher("new-key,old-key")
    assert rotated.decrypt(old_token) == SECRET
    new_token = rotated.rotate(old_token)
    assert CredentialCipher("new-key").decrypt(new_token) == SECRET


def test_settings_fallback_to_secret_key() -> None:
    a = CredentialCipher.from_settings(encryption_key=None, secret_key="s" * 40)
    b = CredentialCipher("s" * 40)
    assert b.decrypt(a.encrypt(SECRET)) == SECRET


def test_object_key_follows_the_template() -> None:
    start = datetime(2025, 6, 22, 11, 0, tzinfo=UTC)
    end = start + timedelta(hours=1)
    assert object_key("analytics", "example-com", start, end, "parquet") == (
        "analytics/example-com/2025/06/22/20250622T110000Z-20250622T120000Z.parquet"
    )
    assert object_key("", "example-com", start, end, "csv.gz") == (
        "example-com/2025/06/22/20250622T110000Z-20250622T120000Z.csv.gz"
    )
    assert manifest_key("a/b/", "s", start, end) == (
        "a/b/s/2025/06/22/20250622T110000Z-20250622T120000Z.manifest.json"
    )


def test_dates_in_keys_are_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    start = datetime(2025, 6, 23, 1, 0, tzinfo=plus_two)  # 2025-06-22 23:00 UTC
    key = object_key(None, "s", start, start + timedelta(hours=1), "json")
    assert key == "s/2025/06/22/20250622T230000Z-20250623T000000Z.json"
    assert window_stamp(datetime(2025, 1, 1, 0, 0, 0, 5, tzinfo=UTC)) == "20250101T000000.000005Z"


def test_unsafe_segments_are_cleaned_or_refused() -> None:
    assert safe_segment("my site/../x") == "my-site-..-x"
    assert normalize_prefix("/a//b c/") == "a/b-c"
    with pytest.raises(ValueError):
        safe_segment("..")
    with pytest.raises(ValueError):
        normalize_prefix("a/../b")
