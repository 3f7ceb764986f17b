"""cache_admin in-process: the scan, the pure prune decision, and prune_to on real blobs."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cache import _lock_holder

from modelzoo.store import cache_admin as admin
from modelzoo import fsio
from modelzoo.store.cache import Cache
from modelzoo.errors import CacheFolderError, OutputNotWritableError

NOW = 1_800_000_000.0


def _add(cache: Cache, size: int, used: float | None = None) -> str:
    data = os.urandom(size)
    sha = hashlib.sha384(data).hexdigest()
    partial = cache.partial_path(sha)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(data)
    cache.add(sha, partial, size)
    if used is not None:
        os.utime(cache.record_path(sha), (used, used))
    return sha


def _corrupt(cache: Cache, sha: str, fill: bytes = b"z") -> Path:
    """Overwrite a blob with bytes of the same length (what a disk error or a hand edit leaves)."""
    path = cache.blob_path(sha)
    size = path.stat().st_size
    path.chmod(0o644)
    path.write_bytes(fill * size)
    return path


def _entry(sha: str, size: int, used: float, kind: str = admin.BLOB) -> admin.Entry:
    return admin.Entry(sha, kind, Path("/c") / sha, size, used, 1)


def test_choose_takes_the_least_recently_used_until_the_rest_fits():
    found = admin.Scan([_entry("a", 100, NOW - 10), _entry("b", 100, NOW - 30), _entry("c", 100, NOW - 20),
                        _entry("d", 100, NOW - 5, admin.PARTIAL)], [])
    assert [e.sha384 for e in admin.choose(found, max_bytes=400, now=NOW)] == []
    assert [e.sha384 for e in admin.choose(found, max_bytes=250, now=NOW)] == ["b", "c"]
    assert [e.sha384 for e in admin.choose(found, max_bytes=250, keep={"b"}, now=NOW)] == ["c", "a"]
    assert [e.sha384 for e in admin.choose(found, max_bytes=0, keep={"a", "b", "c", "d"}, now=NOW)] == []


def test_choose_by_age_reference_and_partials_then_size():
    found = admin.Scan([_entry("old", 10, NOW - 3 * 86400), _entry("new", 10, NOW - 60),
                        _entry("stray", 10, NOW - 60), _entry("p", 10, NOW - 60, admin.PARTIAL)], [])
    assert [e.sha384 for e in admin.choose(found, older_than=86400, now=NOW)] == ["old"]
    assert [e.sha384 for e in admin.choose(found, referenced={"old", "new"}, now=NOW)] == ["stray"]
    assert [e.sha384 for e in admin.choose(found, partials=True, now=NOW)] == ["p"]
    # what the criteria take counts towards the budget: only then the least recently used
    assert [e.sha384 for e in admin.choose(found, older_than=86400, max_bytes=20, now=NOW)] == ["old", "new"]


def test_prune_to_removes_whole_entries_and_counts_what_it_frees(tmp_path):
    cache = Cache(tmp_path / "c")
    now = time.time()
    oldest = _add(cache, 1000, now - 300)
    middle = _add(cache, 2000, now - 200)
    newest = _add(cache, 3000, now - 100)
    os.link(cache.blob_path(middle), tmp_path / "output.bin")  # an output folder's hard link
    result = admin.prune_to(cache, 3500)
    assert [e.sha384 for e in result.removed] == [oldest, middle]
    assert (result.freed, result.unlinked, result.busy) == (1000, 2000, [])
    for sha in (oldest, middle):
        assert not cache.blob_path(sha).exists() and not cache.record_path(sha).exists()
    assert cache.trusted(newest, 3000) is not None
    assert hashlib.sha384((tmp_path / "output.bin").read_bytes()).hexdigest() == middle
    assert admin.prune_to(cache, 3500) == admin.PruneResult([], [], 0, 0)


def test_prune_to_leaves_what_another_process_holds_and_what_the_run_keeps(tmp_path):
    cache = Cache(tmp_path / "c")
    now = time.time()
    held = _add(cache, 1000, now - 300)
    kept = _add(cache, 1000, now - 200)
    free = _add(cache, 1000, now - 100)
    holder = _lock_holder(cache, held, "lock")  # another process, fetching that file
    try:
        assert holder.stdout.readline().strip() == "held"
        result = admin.prune_to(cache, 0, keep={kept})
    finally:
        holder.kill()
        holder.wait()
    assert [e.sha384 for e in result.busy] == [held] and [e.sha384 for e in result.removed] == [free]
    assert cache.blob_path(held).exists() and cache.blob_path(kept).exists()


def test_scan_sorts_blobs_partials_records_and_strays(tmp_path):
    cache = Cache(tmp_path / "c")
    sha = _add(cache, 100, 1_000_000.0)
    partial = cache.partial_path("ab" * 48)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"12345")
    (cache.blob_path(sha).parent / "junk").write_bytes(b"x")
    (cache.root / "sha384" / "zz").mkdir()
    with cache.lock(sha):
        pass  # a lock file: part of the cache, not a stray
    found = admin.scan(cache)
    assert [(e.sha384, e.kind, e.size, e.last_used) for e in found.blobs()] == [(sha, admin.BLOB, 100, 1_000_000.0)]
    assert [(e.sha384, e.size) for e in found.partials()] == [("ab" * 48, 5)]
    assert sorted(p.name for p in found.strays) == ["junk", "zz"]


def test_open_cache_refuses_what_is_not_a_cache_folder_and_creates_nothing(tmp_path):
    with pytest.raises(CacheFolderError, match="does not exist"):
        admin.open_cache(tmp_path / "none")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(CacheFolderError, match="is not a folder"):
        admin.open_cache(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    cache = admin.open_cache(tmp_path / "empty")
    assert admin.scan(cache) == admin.Scan([], []) and list((tmp_path / "empty").iterdir()) == []
    cache.writable = False  # as on a read-only mount
    with pytest.raises(OutputNotWritableError, match="cannot be written: it cannot be pruned"):
        admin.prune_to(cache, 0)


@pytest.mark.parametrize("jobs", [1, 2, 7])
def test_verify_finds_the_same_in_one_process_or_several(tmp_path, jobs):
    cache = Cache(tmp_path / "c")
    good = [_add(cache, size) for size in (10, 3 << 20, 5000, 1)]
    bad = _add(cache, 2000)
    path = _corrupt(cache, bad, b"y")
    stray = cache.blob_path(good[0]).parent / "notes.txt"
    stray.write_text("mine")
    (cache.root / "sha384" / "top-level-stray").write_text("x")
    seen: list[int] = []
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    result = admin.verify(cache, jobs=jobs, progress=seen.append)
    # worker processes ran (and were waited for) exactly when asked for: a child that ran has page faults
    assert (resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt > children) == (jobs > 1)
    assert (result.blobs, result.bytes, result.clean) == (5, 10 + (3 << 20) + 5000 + 1 + 2000, False)
    assert sorted(seen) == sorted([10, 3 << 20, 5000, 1, 2000])
    assert [(f.path, f.status) for f in result.findings] == sorted(
        [(path, admin.CORRUPT), (stray, admin.UNACCOUNTED), (cache.root / "sha384" / "top-level-stray", admin.UNACCOUNTED)])
    assert f"its name says {bad[:16]}" in result.findings[[f.path for f in result.findings].index(path)].detail


def test_repair_leaves_a_corrupt_blob_another_process_holds(tmp_path):
    cache = Cache(tmp_path / "c")
    bad = _add(cache, 1000)
    path = _corrupt(cache, bad)
    findings = admin.verify(cache, jobs=1).findings
    holder = _lock_holder(cache, bad, "lock")  # e.g. a download that found it corrupt and fetches it again
    try:
        assert holder.stdout.readline().strip() == "held"
        removed, left = admin.repair(cache, findings)
    finally:
        holder.kill()
        holder.wait()
    assert (removed, [f.path for f in left]) == ([], [path]) and path.exists()
    removed, left = admin.repair(cache, findings)
    assert ([f.path for f in removed], left) == ([path], []) and not path.exists()


def test_nothing_outside_the_cache_is_created_or_removed_through_planted_links(tmp_path):
    """A lock file, a record, a blob and a shard folder that are symbolic links out of the cache:
    prune and repair touch the links at most, never what they point at."""
    cache = Cache(tmp_path / "c")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"precious")
    locked = _add(cache, 100)
    lock = cache.blob_path(locked).with_suffix(".lock")
    lock.symlink_to(outside / "made-by-lock")  # a lock taken through it would create this file
    linked = _add(cache, 200)
    record = cache.record_path(linked)
    record.unlink()
    record.symlink_to(outside / "keep.txt")
    fake = "ee" * 48
    cache.blob_path(fake).parent.mkdir(parents=True, exist_ok=True)
    cache.blob_path(fake).symlink_to(outside / "keep.txt")
    (cache.root / "sha384" / "ff").symlink_to(outside)
    findings = admin.verify(cache, jobs=1).findings
    assert sorted((f.path, f.status) for f in findings) == sorted(
        [(lock, admin.UNACCOUNTED), (record, admin.UNACCOUNTED), (cache.blob_path(fake), admin.UNACCOUNTED),
         (cache.root / "sha384" / "ff", admin.UNACCOUNTED)])
    assert sorted(admin.scan(cache).strays) == sorted(f.path for f in findings)
    result = admin.prune_to(cache, 0)
    assert sorted(e.sha384 for e in result.removed) == [linked]  # the other one's lock cannot be taken
    assert [e.sha384 for e in result.busy] == [locked]
    assert not os.path.lexists(record)  # went with its blob: the link, not what it points at
    for f in findings:
        if os.path.lexists(f.path):
            os.utime(f.path, (time.time() - 2 * 3600,) * 2, follow_symlinks=False)
    removed, left = admin.repair(cache, admin.verify(cache, jobs=1).findings)
    assert left == [] and not (cache.root / "sha384" / "ff").is_symlink()
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"]
    assert (outside / "keep.txt").read_bytes() == b"precious"
    assert admin.prune_to(cache, 0).removed[0].sha384 == locked


def test_a_shard_folder_swapped_for_a_link_after_the_scan_is_not_followed(tmp_path):
    """Between the scan and the removal another process replaces a shard folder with a link to a
    folder outside that holds a file of the same name: that file stays."""
    cache = Cache(tmp_path / "c")
    sha = _add(cache, 100)
    found = admin.scan(cache)
    shard = cache.blob_path(sha).parent
    outside = tmp_path / "outside"
    shard.rename(outside)
    shard.symlink_to(outside)
    result = admin.remove(cache, found.entries)
    assert result.removed == [] and (outside / sha[2:]).exists() and (outside / (sha[2:] + ".ok")).exists()
    assert not (outside / (sha[2:] + ".lock")).exists()


def test_repair_leaves_a_blob_made_good_since_it_was_verified(tmp_path):
    """verify finds a blob corrupt; before repair, a download replaces it with the right file
    (under the blob's lock, as the downloader does): repair must not remove the good one."""
    cache = Cache(tmp_path / "c")
    data = os.urandom(1000)
    sha = hashlib.sha384(data).hexdigest()
    path = cache.blob_path(sha)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"w" * 1000)
    findings = admin.verify(cache, jobs=1).findings
    assert [f.status for f in findings] == [admin.CORRUPT]
    path.unlink()
    good = cache.partial_path(sha)
    good.write_bytes(data)
    cache.add(sha, good, len(data))
    removed, left = admin.repair(cache, findings)
    assert (removed, left) == ([], []) and cache.trusted(sha, len(data)) is not None


def test_repair_waits_for_a_prune_instead_of_throwing_away_the_verification(tmp_path):
    cache = Cache(tmp_path / "c")
    bad = _add(cache, 1000)
    path = _corrupt(cache, bad)
    findings = admin.verify(cache, jobs=1).findings
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom pathlib import Path\n"
                               "from modelzoo.store import cache_admin\n"
                               "with cache_admin._one_prune(cache_admin.open_cache(Path(sys.argv[2]))):\n"
                               "    print('holding', flush=True); time.sleep(1)\n",
                               str(Path(__file__).parents[2] / "tools"), str(cache.root)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        removed, left = admin.repair(cache, findings)
    finally:
        holder.kill()
        holder.wait()
    assert ([f.path for f in removed], left) == ([path], []) and not path.exists()


def test_a_record_left_without_its_blob_is_found_and_repaired(tmp_path):
    """A prune killed between its two unlinks (the blob, then its record) leaves a record alone:
    verify reports it, repair removes it (under the blob's lock, and not once the blob is back)."""
    cache = Cache(tmp_path / "c")
    gone, back = _add(cache, 100), _add(cache, 200)
    for sha in (gone, back):
        cache.blob_path(sha).unlink()
    findings = admin.verify(cache, jobs=1).findings
    assert sorted((f.path, f.detail) for f in findings) == sorted(
        (cache.record_path(sha), admin.ORPHAN) for sha in (gone, back))
    cache.blob_path(back).write_bytes(b"b" * 200)  # a blob there again before the repair
    removed, left = admin.repair(cache, findings)
    assert [f.path for f in removed] == [cache.record_path(gone)] and left == []
    assert not cache.record_path(gone).exists() and cache.record_path(back).exists()


def test_a_blob_removed_while_verify_runs_is_not_counted(tmp_path):
    """Listed, then removed with its record (by a prune, say) before its turn: neither a blob
    verified nor a finding."""
    cache = Cache(tmp_path / "c")
    for _ in range(5):
        _add(cache, 50)
    a = _add(cache, 10)
    while True:  # a blob of 11 bytes in a's shard folder (one in 256 tries)
        data = os.urandom(11)
        b = hashlib.sha384(data).hexdigest()
        if b[:2] == a[:2]:
            break
    partial = cache.partial_path(b)
    partial.write_bytes(data)
    cache.add(b, partial, 11)
    removed: list[str] = []

    def remove_the_other(size: int) -> None:  # called right after each blob (jobs=1: in this process)
        if size in (10, 11) and not removed:
            other = b if size == 10 else a
            cache.blob_path(other).unlink()
            cache.record_path(other).unlink()
            removed.append(other)

    result = admin.verify(cache, jobs=1, progress=remove_the_other)
    assert len(removed) == 1 and result.findings == []
    kept = 10 if removed == [b] else 11
    assert (result.blobs, result.bytes) == (6, 5 * 50 + kept)


def test_a_record_being_written_is_not_a_stray_but_one_left_for_an_hour_is(tmp_path):
    """Every download writes .ok records through a temporary beside them (renamed over the record
    a moment later): a verify at that moment must not call the cache unclean (it did, 5 runs in
    30 beside two processes writing records). A temporary a killed process left is a stray."""
    cache = Cache(tmp_path / "c")
    sha = _add(cache, 100)
    record = cache.record_path(sha)
    live = fsio.temp_name(record, ".tmp")  # the name fsio.write_bytes gives it
    old = fsio.temp_name(record, ".tmp")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    dead = live.with_name(live.name.replace(f".{os.getpid()}-", f".{gone}-"))  # a young one, its process gone
    for path in (live, old, dead):
        path.write_bytes(record.read_bytes())
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    strays = sorted([old, dead])
    assert sorted((f.path, f.status) for f in admin.verify(cache, jobs=1).findings) == \
        [(p, admin.UNACCOUNTED) for p in strays]
    assert sorted(admin.scan(cache).strays) == strays
