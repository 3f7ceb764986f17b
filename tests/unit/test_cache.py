"""cache in-process: blobs added by rename, verified on every use, corrupt ones discarded."""

from __future__ import annotations

import hashlib
import os
import threading

from modelzoo.cache import Cache


def test_add_then_copy_out_verified(tmp_path):
    cache = Cache(tmp_path / "c")
    data = os.urandom(300_000)
    sha = hashlib.sha384(data).hexdigest()
    assert cache.writable and not cache.has_blob(sha)
    assert cache.partial_path(sha).name == sha[2:] + ".incomplete"
    with cache.lock(sha):
        partial = cache.partial_path(sha)
        partial.write_bytes(data)
        blob = cache.add(sha, partial, len(data))
    assert blob == cache.blob_path(sha) and not partial.exists()
    assert cache.export(sha, len(data), tmp_path / "out") == "linked" and (tmp_path / "out").read_bytes() == data


def test_a_corrupt_blob_is_discarded(tmp_path):
    cache = Cache(tmp_path / "c")
    data = os.urandom(1000)
    sha = hashlib.sha384(data).hexdigest()
    blob = cache.blob_path(sha)
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data[:-1] + b"!")
    assert cache.export(sha, len(data), tmp_path / "out") is None
    assert not blob.exists() and not (tmp_path / "out").exists()
    assert cache.export(sha, len(data), tmp_path / "out") is None  # no blob: None, nothing raised


def test_the_lock_excludes_other_holders(tmp_path):
    cache = Cache(tmp_path / "c")
    sha = "ab" * 48
    order: list[str] = []
    with cache.lock(sha):
        t = threading.Thread(target=lambda: (cache.lock(sha).__enter__(), order.append("second")))
        t.start()
        t.join(0.3)
        order.append("first")
    t.join(5)
    assert order == ["first", "second"]


def test_export_links_and_the_stat_record_notices_changes(tmp_path):
    cache = Cache(tmp_path / "c")
    data = os.urandom(10_000)
    sha = hashlib.sha384(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data)
    blob = cache.add(sha, partial, len(data))
    assert cache.trusted(sha, len(data)) is not None
    assert cache.export(sha, len(data), tmp_path / "out") == "linked"
    assert cache.holds(tmp_path / "out", sha, len(data))
    with open(tmp_path / "out", "r+b") as f:  # the link is the blob
        f.write(b"!")
    assert cache.trusted(sha, len(data)) is None and not cache.holds(tmp_path / "out", sha, len(data))
    assert cache.export(sha, len(data), tmp_path / "out2") is None  # re-hashed, found corrupt, discarded
    assert not blob.exists()


def test_a_stat_record_that_is_not_a_file_is_no_record(tmp_path):
    """A FIFO where the record belongs would block a plain open for ever: it is no record."""
    cache = Cache(tmp_path / "c")
    data = os.urandom(1000)
    sha = hashlib.sha384(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data)
    cache.add(sha, partial, len(data))
    assert cache.trusted(sha, len(data)) is not None
    record = cache.blob_path(sha).with_suffix(".ok")
    record.unlink()
    os.mkfifo(record)
    assert cache.trusted(sha, len(data)) is None
    assert cache.export(sha, len(data), tmp_path / "out") == "linked"  # re-hashed, then used
    assert (tmp_path / "out").read_bytes() == data


def _cache_with_blob(tmp_path, size: int = 10_000):
    cache = Cache(tmp_path / "c")
    data = os.urandom(size)
    sha = hashlib.sha384(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data)
    cache.add(sha, partial, len(data))
    return cache, sha, data


def test_link_at_places_a_trusted_blob_only_where_nothing_is(tmp_path):
    cache, sha, data = _cache_with_blob(tmp_path)
    assert cache.link_at(sha, len(data), tmp_path / "free")
    assert (tmp_path / "free").stat().st_ino == cache.blob_path(sha).stat().st_ino
    assert not cache.link_at(sha, len(data) + 1, tmp_path / "wrong-size") and not (tmp_path / "wrong-size").exists()
    (tmp_path / "taken").write_bytes(b"mine")
    assert not cache.link_at(sha, len(data), tmp_path / "taken") and (tmp_path / "taken").read_bytes() == b"mine"
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    assert not cache.link_at(sha, len(data), tmp_path / "link") and not (tmp_path / "nowhere").exists()
