"""gati.ids: random version-4 UUIDs as text, as ``uuid.uuid4`` makes them."""

from __future__ import annotations

import os
import uuid
from collections import Counter

import pytest

from gati.ids import uuid_hex, uuid_str


def test_uuid_str_is_a_canonical_version_4_uuid() -> None:
    seen = set()
    for _ in range(5000):  # several 4 KB buffers
        text = uuid_str()
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        seen.add(text)
    assert len(seen) == 5000


def test_uuid_hex_is_a_version_4_uuid_with_every_variant_digit() -> None:
    variants: Counter[str] = Counter()
    for _ in range(4000):
        text = uuid_hex()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, text)
        variants[text[16]] += 1
    # The variant digit keeps two random bits: 8, 9, a and b all occur.
    assert set(variants) == set("89ab")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_parents_buffer() -> None:
    uuid_hex()  # the parent holds a partly used buffer
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's teardown
        os.write(write_end, ",".join(uuid_hex() for _ in range(3)).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child = pipe.read().decode().split(",")
    os.waitpid(pid, 0)
    parent = [uuid_hex() for _ in range(3)]
    assert len(child) == 3
    assert not set(child) & set(parent)
