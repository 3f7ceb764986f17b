"""What a team member with write access to a shared cache could plant in it (issue 24): a partial
download that is a link to someone's file, a shard folder that is a link to elsewhere, a FIFO
where a partial belongs. None of them may turn into a write, a read or a hang outside the cache:
each is not made by the cache, treated as absent by the downloader and the IR cache, reported by
`modelzoo-cache verify` and removed by `--repair` (the link, never its target). And a read-only
cache without an `ir/` folder (a team's read-only download cache) serves nothing and the
converter converts beside it."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import MB, _interrupted, _start, download, run_tool, sha384, write_model
from test_ir_cache import conversions, convert, ir_files, setup

from modelzoo.devtools.loopback import Fault

MODEL = "public/tiny-c"
VICTIM = b"someone else's file, writable by the user who downloads\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(VICTIM)
    victim.chmod(0o644)
    return victim


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644


def _plant(link: Path, target: Path, kind: str) -> None:
    if kind == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_a_partial_planted_as_a_link_is_never_written_through(one_file, zoo, tmp_path, kind):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    shard = cache / "sha384" / sha[:2]
    shard.mkdir(parents=True)
    victim = _victim(tmp_path)
    partial = shard / f"{sha[2:]}.incomplete"
    _plant(partial, victim, kind)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    _untouched(victim)  # not truncated, not filled with the model, not made 0444
    assert path.read_bytes() == data
    blob = shard / sha[2:]
    assert stat.S_ISREG(blob.lstat().st_mode) and blob.read_bytes() == data
    assert not partial.is_symlink() and victim.stat().st_nlink == 1  # the link went (inside the cache), not its target


def test_a_fifo_at_a_partials_place_does_not_hang_the_downloader(one_file, zoo, tmp_path):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    shard = cache / "sha384" / sha[:2]
    shard.mkdir(parents=True)
    os.mkfifo(shard / f"{sha[2:]}.incomplete")
    # (the timeout is a hang guard only: before the fix this run never ended, SIGTERM included)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache, timeout=120)
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == data and (shard / sha[2:]).read_bytes() == data


def test_sigterm_ends_a_run_that_met_a_fifo_at_a_partials_place(server, zoo, tmp_path):
    """Before the fix a worker blocked in open() of the FIFO while holding the temporaries'
    lock, and SIGTERM's cleanup waited on that lock for ever."""
    data = os.urandom(8 * MB)
    server.add("/slow.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.1))
    write_model(zoo, "slow", [{"name": "slow.bin", "data": data, "url": server.url("/slow.bin")}])
    cache, sha = tmp_path / "cache", sha384(data)
    shard = cache / "sha384" / sha[:2]
    shard.mkdir(parents=True)
    os.mkfifo(shard / f"{sha[2:]}.incomplete")
    proc = _start(zoo, tmp_path / "out", "--name", "slow", "--cache_dir", cache)
    try:
        for _ in range(500):  # until the download is under way (before the fix it never was)
            if server.count() or proc.poll() is not None:
                break
            time.sleep(0.01)
        _interrupted(proc, signal.SIGTERM)  # (its communicate() has a 30 s hang guard)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_a_shard_folder_planted_as_a_link_gets_no_blob_lock_or_record_written_outside(one_file, zoo, tmp_path):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cache / "sha384").mkdir(parents=True)
    (cache / "sha384" / sha[:2]).symlink_to(elsewhere)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert sorted(elsewhere.iterdir()) == []
    assert path.read_bytes() == data
    shard = cache / "sha384" / sha[:2]
    assert not shard.is_symlink() and (shard / sha[2:]).read_bytes() == data


def test_a_shard_folder_planted_as_a_link_is_not_served_from(one_file, server, zoo, tmp_path):
    """A link to a folder that holds the blob and its record (a copy of a real shard) is absent:
    the file is fetched again, nothing outside is read, used or written."""
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    assert download(zoo, tmp_path / "first", "--name", "m", "--cache_dir", cache).returncode == 0
    shard = cache / "sha384" / sha[:2]
    elsewhere = tmp_path / "elsewhere"
    shard.rename(elsewhere)  # (same inodes: the record still matches its blob)
    shard.symlink_to(elsewhere)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in elsewhere.iterdir()}
    requests = server.count()
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert server.count() == requests + 1  # fetched again, not served from outside
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in elsewhere.iterdir()} == before
    assert path.read_bytes() == data and os.stat(path).st_ino != (elsewhere / sha[2:]).stat().st_ino


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_verify_reports_planted_links_and_repair_removes_them_not_their_targets(one_file, zoo, tmp_path, kind):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    victim = _victim(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "kept").write_bytes(b"kept")
    partial = cache / "sha384" / sha[:2] / f"{sha[2:]}.incomplete"
    _plant(partial, victim, kind)
    other = "00" if sha[:2] != "00" else "01"
    shard = cache / "sha384" / other
    shard.symlink_to(elsewhere)
    result = run_tool("cache", "verify", "--cache_dir", cache)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"unaccounted  {partial}  not made by the cache" in result.stdout
    assert f"unaccounted  {shard}  not made by the cache" in result.stdout
    # a link planted a moment ago is no live temporary of ours: --repair removes it at once
    result = run_tool("cache", "verify", "--cache_dir", cache, "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not partial.is_symlink() and not shard.is_symlink() and victim.stat().st_nlink == 1
    _untouched(victim)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["kept"]
    assert run_tool("cache", "verify", "--cache_dir", cache).returncode == 0


def _plant_shard_links(store: Path, elsewhere: Path) -> None:
    """Every shard folder a blob or key could land in, a link to one folder outside."""
    store.mkdir(parents=True, exist_ok=True)
    for i in range(256):
        (store / f"{i:02x}").symlink_to(elsewhere)


def test_ir_cache_shard_folders_planted_as_links_get_nothing_written_outside(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _plant_shard_links(w["cache"] / "ir" / "sha384", elsewhere)
    _plant_shard_links(w["cache"] / "ir" / "keys", elsewhere)
    first = convert(w, tmp_path / "a")
    assert first.returncode == 0, first.stderr
    assert sorted(elsewhere.iterdir()) == []
    assert sorted(ir_files(tmp_path / "a" / MODEL)) == ["FP16/tiny-c.bin", "FP16/tiny-c.xml", "FP32/tiny-c.bin",
                                                         "FP32/tiny-c.xml"]
    # the IR went into the cache's own folders: the next run is served from it
    second = convert(w, tmp_path / "b")
    assert second.returncode == 0, second.stderr
    assert conversions(w) == 1 and sorted(elsewhere.iterdir()) == []
    assert ir_files(tmp_path / "a" / MODEL) == ir_files(tmp_path / "b" / MODEL)


def test_a_read_only_cache_without_an_ir_folder_converts_beside_it(tmp_path, zoo, tmpfs):
    w = setup(tmp_path, zoo)
    w["cache"] = tmpfs(readonly=True)  # (root ignores modes; a read-only mount stops it)
    result = convert(w, tmp_path / "a")
    assert result.returncode == 0, result.stderr
    assert "Read-only" not in result.stderr
    assert conversions(w) == 1 and not (w["cache"] / "ir").exists()
    assert sorted(ir_files(tmp_path / "a" / MODEL)) == ["FP16/tiny-c.bin", "FP16/tiny-c.xml", "FP32/tiny-c.bin",
                                                         "FP32/tiny-c.xml"]


def test_a_read_only_cache_with_ir_serves_what_it_holds(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    assert convert(w, tmp_path / "a").returncode == 0
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "--bind", str(w["cache"]), str(ro)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(ro)], check=True)
        w["cache"] = ro
        result = convert(w, tmp_path / "b")
        assert result.returncode == 0, result.stderr
        assert conversions(w) == 1, "converted again although the read-only cache holds the IR"
        assert ir_files(tmp_path / "a" / MODEL) == ir_files(tmp_path / "b" / MODEL)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)


def test_a_lock_file_planted_as_a_link_is_not_truncated_or_locked_through(one_file, zoo, tmp_path):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    shard = cache / "sha384" / sha[:2]
    shard.mkdir(parents=True)
    victim = _victim(tmp_path)
    (shard / f"{sha[2:]}.lock").symlink_to(victim)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    _untouched(victim)
    assert path.read_bytes() == data


def test_verify_covers_the_ir_cache_and_repair_removes_what_it_did_not_make(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    assert convert(w, tmp_path / "a").returncode == 0
    ir = w["cache"] / "ir"
    clean = run_tool("cache", "verify", "--cache_dir", w["cache"])
    assert clean.returncode == 0 and " 0 blobs" not in clean.stdout, clean.stdout + clean.stderr
    victim, elsewhere = _victim(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    [key_shard] = [p for p in (ir / "keys").iterdir()]
    [entry] = list(key_shard.glob("*.json"))
    blob = sorted(p for p in (ir / "sha384").glob("*/*") if "." not in p.name)[0]
    with open(blob, "r+b") as f:  # (as root: the blob is read-only) same size, one byte changed
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 1]))
    free = next(f"{i:02x}" for i in range(256) if not (ir / "keys" / f"{i:02x}").exists()
                and not (ir / "sha384" / f"{i:02x}").exists())
    planted = [ir / "keys" / free, ir / "sha384" / free, key_shard / ("0" * 94 + ".json")]
    planted[0].symlink_to(elsewhere)
    planted[1].symlink_to(elsewhere)
    planted[2].symlink_to(victim)
    result = run_tool("cache", "verify", "--cache_dir", w["cache"])
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"corrupt  {blob}  SHA-384 is " in result.stdout
    for path in planted:
        assert f"unaccounted  {path}  not made by the cache" in result.stdout
    result = run_tool("cache", "verify", "--cache_dir", w["cache"], "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(p.is_symlink() for p in planted) and not blob.exists() and entry.exists()
    _untouched(victim)
    assert sorted(elsewhere.iterdir()) == []
    assert run_tool("cache", "verify", "--cache_dir", w["cache"]).returncode == 0


# -- temporaries that name their host (issue 23): a cache or an output folder shared by machines


def _as_host(host: str, code: str) -> None:
    """Run Python ``code`` (with modelzoo importable as ``fsio``) in a process whose host name is
    ``host`` (a UTS namespace of its own), and let it end: its pid is then dead on this host."""
    import sys

    script = f"import os, sys\nsys.path.insert(0, {str(Path(__file__).parents[1] / 'tools')!r})\n" \
             f"from pathlib import Path\nfrom modelzoo import fsio\n{code}"
    subprocess.run(["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$0" -c "$1"', sys.executable, script],
                   check=True, timeout=60)


def test_a_run_removes_only_its_own_hosts_dead_staging_folders(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    target = tmp_path / "a" / MODEL
    target.mkdir(parents=True)
    leave = "with fsio.staged_dir(Path({!r}), '.converting-%d-' % os.getpid()):\n    os._exit(0)\n".format(str(target))
    _as_host("otherhost", leave)  # a run on another machine sharing the folder (its pid means nothing here)
    _as_host(os.uname().nodename, leave)  # a killed run of this machine
    assert len(list(target.glob(".converting-*"))) == 2
    result = convert(w, tmp_path / "a")
    assert result.returncode == 0, result.stderr
    left = [p.name for p in target.glob(".converting-*")]
    assert len(left) == 1 and "@otherhost." in left[0], left  # this host's dead one went, the other's stays


def test_another_hosts_temporary_in_the_cache_is_a_stray_only_once_a_day_old(one_file, zoo, tmp_path):
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    record = cache / "sha384" / sha[:2] / f"{sha[2:]}.ok"
    make = f"tmp = fsio.temp_name(Path({str(record)!r}), '.tmp')\ntmp.write_bytes(b'half a record')\n"
    _as_host("otherhost", make)
    [theirs] = list(record.parent.glob(".*.tmp"))
    result = run_tool("cache", "verify", "--cache_dir", cache)
    assert result.returncode == 0, result.stdout  # its pid is gone here: but it is another host's
    assert "@otherhost." in theirs.name
    os.utime(theirs, (time.time() - 3 * 3600,) * 2)
    assert run_tool("cache", "verify", "--cache_dir", cache, "--repair").returncode == 0 and theirs.exists()
    os.utime(theirs, (time.time() - 2 * 86400,) * 2)  # a day old: what a run that died there left
    result = run_tool("cache", "verify", "--cache_dir", cache)
    assert result.returncode == 1 and f"unaccounted  {theirs}  not made by the cache" in result.stdout
    assert re.search(r"\nunaccounted +1 files the cache did not make", run_tool("cache", "ls", "--cache_dir", cache).stdout)
    assert run_tool("cache", "verify", "--cache_dir", cache, "--repair").returncode == 0 and not theirs.exists()


def test_prune_removes_another_hosts_temporary_once_a_day_old_and_not_before(one_file, zoo, tmp_path):
    """Issue 23's temporaries that name their host: another host's temporary in a shared cache
    is left while it may be that host's live run (its pid says nothing here); once a day old,
    prune removes it (as verify --repair does), and nothing else of the cache."""
    data, out, path = one_file
    cache, sha = tmp_path / "cache", sha384(data)
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    record = cache / "sha384" / sha[:2] / f"{sha[2:]}.ok"
    _as_host("otherhost", f"tmp = fsio.temp_name(Path({str(record)!r}), '.tmp')\ntmp.write_bytes(b'half')\n"
                          f"tmp2 = fsio.temp_name(Path({str(record)!r}), '.tmp')\ntmp2.write_bytes(b'other half')\n")
    young, old = sorted(record.parent.glob(".*@otherhost.*.tmp"))
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    os.utime(young, (time.time() - 3 * 3600,) * 2)
    result = run_tool("cache", "prune", "--cache_dir", cache, "--partials")
    assert result.returncode == 0, result.stderr
    assert f"removed  {old}  (a temporary a run that was killed left)" in result.stdout
    assert not old.exists() and young.exists()
    assert (cache / "sha384" / sha[:2] / sha[2:]).is_file() and record.is_file()  # the entry itself stays
