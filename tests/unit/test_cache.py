"""cache in-process: blobs added by rename, verified on every use, corrupt ones discarded."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from modelzoo.store.cache import USE_INTERVAL, Cache


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
    blob.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # always differs (a fixed b"!" did not, 1 in 256)
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
        f.write(bytes([data[0] ^ 1]))  # always differs (a fixed byte matches 1 random blob in 256)
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


def test_a_use_moves_last_used_forward_at_most_once_an_hour(tmp_path):
    """"Last used" is the stat record's mtime; a use moves it only when it is over an hour old,
    and never changes what the record says (the blob's stat)."""
    cache, sha, data = _cache_with_blob(tmp_path)
    record = cache.record_path(sha)
    content = record.read_bytes()
    written = record.stat().st_mtime_ns
    assert cache.link_at(sha, len(data), tmp_path / "a")
    assert record.stat().st_mtime_ns == written  # used within the hour: no write
    two_hours_ago = time.time() - 2 * USE_INTERVAL
    os.utime(record, (two_hours_ago, two_hours_ago))
    assert cache.export(sha, len(data), tmp_path / "b") == "linked"
    assert time.time() - record.stat().st_mtime < 60 and record.read_bytes() == content
    moved = record.stat().st_mtime_ns
    assert cache.holds(tmp_path / "a", sha, len(data))  # an output that is already the blob: also a use
    assert record.stat().st_mtime_ns == moved and cache.trusted(sha, len(data)) is not None


def test_a_cache_that_is_not_writable_records_no_use(tmp_path):
    cache, sha, data = _cache_with_blob(tmp_path)
    record = cache.record_path(sha)
    old = time.time() - 2 * USE_INTERVAL
    os.utime(record, (old, old))
    reader = Cache(tmp_path / "c")
    reader.writable = False  # what a read-only mount makes it (tests/test_cache_tool.py mounts one)
    assert reader.link_at(sha, len(data), tmp_path / "out")
    assert record.stat().st_mtime == old


def _lock_holder(cache: Cache, sha: str, how: str) -> subprocess.Popen:
    """Another process that takes the blob's lock (``lock``: waiting; ``try``: prints whether it got it)."""
    script = ("import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom pathlib import Path\n"
              "from modelzoo.store.cache import Cache\ncache = Cache(Path(sys.argv[2]))\n"
              "if sys.argv[4] == 'try':\n    print('free' if cache.try_lock(sys.argv[3]) else 'held', flush=True)\n"
              "else:\n    with cache.lock(sys.argv[3]):\n        print('held', flush=True); time.sleep(30)\n")
    return subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parents[2] / "tools"),
                             str(cache.root), sha, how], stdout=subprocess.PIPE, text=True)


def test_try_lock_takes_a_free_lock_and_never_waits_for_a_held_one(tmp_path):
    cache = Cache(tmp_path / "c")
    sha = "cd" * 48
    holder = _lock_holder(cache, sha, "lock")
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert cache.try_lock(sha) is None and time.monotonic() - started < 1
    finally:
        holder.kill()
        holder.wait()
    lock = cache.try_lock(sha)  # free once its holder is gone
    assert lock is not None
    with lock:
        assert _lock_holder(cache, sha, "try").communicate(timeout=30)[0].strip() == "held"
    assert _lock_holder(cache, sha, "try").communicate(timeout=30)[0].strip() == "free"  # released by the block


def test_a_record_that_is_a_link_is_no_record_and_its_target_is_not_touched(tmp_path):
    """A stat record replaced by a link to a file outside the cache (with the right content): the
    blob is not trusted through it, and "last used" is never written through it."""
    cache, sha, data = _cache_with_blob(tmp_path)
    record = cache.record_path(sha)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(record.read_bytes())
    old = time.time() - 2 * USE_INTERVAL
    os.utime(outside, (old, old))
    record.unlink()
    record.symlink_to(outside)
    assert cache.trusted(sha, len(data)) is None
    assert outside.stat().st_mtime == old
