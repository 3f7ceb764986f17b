"""obtain in-process: the one cache-or-network routine of the downloader and the mirror, with a
real cache and real files (the fetch is the caller's: here it writes bytes, or wrong ones)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import pytest

from modelzoo.store.cache import Cache
from modelzoo.descriptor import GoogleDriveSource, HttpSource, ModelFile
from modelzoo.errors import ChecksumMismatchError
from modelzoo.download.obtain import CACHED, FETCH, FETCH_BESIDE, RESUME, decide, obtain, source_url

DATA = os.urandom(200_000)
SHA = hashlib.sha384(DATA).hexdigest()


def test_decide():
    assert decide(None, True) == FETCH  # no cache
    assert decide(True, False) == CACHED
    assert decide(False, True) == RESUME
    assert decide(False, False) == FETCH_BESIDE  # a read-only cache still serves, the rest lands beside


class Calls:
    def __init__(self, data: bytes = DATA) -> None:
        self.paths: list[Path] = []
        self.data = data

    def __call__(self, path: Path) -> None:
        self.paths.append(path)
        path.write_bytes(self.data)
        if self.data != DATA:
            raise ChecksumMismatchError("f.bin", SHA, "0" * 96)


def test_without_a_cache_the_file_is_fetched_into_the_temporary(tmp_path):
    fetch = Calls()
    assert obtain(SHA, len(DATA), "f.bin", tmp_path / "t", None, fetch, print) == FETCH
    assert fetch.paths == [tmp_path / "t"] and (tmp_path / "t").read_bytes() == DATA


def test_a_writable_cache_fetches_into_its_partial_then_hands_out(tmp_path):
    cache, fetch = Cache(tmp_path / "c"), Calls()
    assert obtain(SHA, len(DATA), "f.bin", tmp_path / "t1", cache, fetch, print) == FETCH
    assert fetch.paths == [cache.partial_path(SHA)] and cache.has_blob(SHA)
    assert obtain(SHA, len(DATA), "f.bin", tmp_path / "t2", cache, fetch, print) == CACHED
    assert len(fetch.paths) == 1 and (tmp_path / "t2").read_bytes() == DATA


def test_a_corrupt_blob_is_said_and_fetched_again(tmp_path):
    cache, fetch, said = Cache(tmp_path / "c"), Calls(), []
    blob = cache.blob_path(SHA)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(DATA[:-1] + bytes([DATA[-1] ^ 1]))
    assert obtain(SHA, len(DATA), "f.bin", tmp_path / "t", cache, fetch, said.append) == FETCH
    assert said == ["f.bin: cache entry was corrupt; discarded, fetching again"]
    assert (tmp_path / "t").read_bytes() == DATA and blob.read_bytes() == DATA


def test_wrong_bytes_leave_no_partial_to_resume(tmp_path):
    cache = Cache(tmp_path / "c")
    with pytest.raises(ChecksumMismatchError):
        obtain(SHA, len(DATA), "f.bin", tmp_path / "t", cache, Calls(b"x" * len(DATA)), print)
    assert not cache.partial_path(SHA).exists() and not cache.has_blob(SHA)


def test_google_drive_ids_are_quoted_in_one_place():
    f = ModelFile(PurePosixPath("a"), 1, SHA, GoogleDriveSource("a b&c"))
    assert source_url(f) == "https://drive.google.com/uc?export=download&confirm=t&id=a%20b%26c"
    assert source_url(f._replace(source=HttpSource("http://h/x"))) == "http://h/x"
