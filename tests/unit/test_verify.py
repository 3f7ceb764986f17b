"""verify in-process: counting and hashing while bytes stream past."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from modelzoo.errors import ChecksumMismatchError, SizeMismatchError
from modelzoo.verify import BackgroundHashing, StreamVerifier, feed_file, file_digest, file_matches, verify_file


def test_stream_verifier_says_what_is_wrong():
    data = os.urandom(1000)
    good = hashlib.sha384(data).hexdigest()
    v = StreamVerifier(1000, good.upper())  # descriptors may use upper case
    v.update(data[:400])
    with pytest.raises(SizeMismatchError, match="expected 1000 bytes, got 400"):
        v.check("m.bin")
    v.update(data[400:])
    assert v.matches()
    v = StreamVerifier(1000, good)
    v.update(data[:-1] + bytes([data[-1] ^ 1]))  # the last byte, surely different
    with pytest.raises(ChecksumMismatchError, match=f"expected {good}, got "):
        v.check("m.bin")
    v = StreamVerifier(10, good)
    v.update(data)
    assert v.too_long


def test_background_hashing_sees_every_byte():
    chunks = [os.urandom(n) for n in (1, 1 << 20, 12345, 0, 7)]
    v = StreamVerifier(sum(map(len, chunks)), "")
    with BackgroundHashing(v, depth=2) as h:
        for c in chunks:
            h.update(c)
    assert v.hexdigest() == hashlib.sha384(b"".join(chunks)).hexdigest()


def test_feed_file_copies_and_stops_when_too_long():
    data = os.urandom(3 << 20)
    v = StreamVerifier(len(data), hashlib.sha384(data).hexdigest())
    out = io.BytesIO()
    feed_file(v, io.BytesIO(data), out)
    assert v.matches() and out.getvalue() == data
    v = StreamVerifier(100, "")
    out = io.BytesIO()
    feed_file(v, io.BytesIO(data), out)
    assert v.too_long and out.getvalue() == b""  # the first chunk was already too long: not copied


def test_files_on_disk(tmp_path):
    path = tmp_path / "f"
    data = os.urandom(5000)
    path.write_bytes(data)
    sha = hashlib.sha384(data).hexdigest()
    assert file_digest(path) == (5000, sha)
    assert file_matches(path, 5000, sha)
    assert not file_matches(path, 5001, sha) and not file_matches(tmp_path / "nope", 5000, sha)
    with pytest.raises(SizeMismatchError, match="expected 4999 bytes, got 5000"):
        verify_file(path, 4999, sha)
