"""The downloader with --cache_dir: warm runs without requests or YAML, corrupt and read-only
caches, processes sharing one cache, hard links, reflinks and copies, partial files resumed."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest
from conftest import MB, SCRIPTS, _start, download, error_lines, leftovers, sha384, write_model

from modelzoo.devtools.loopback import Fault


def test_warm_cache_makes_no_requests(server, zoo, tmp_path):
    files = []
    for i in range(4):
        data = os.urandom(100_000)
        files.append((f"f{i}.bin", data))
        server.add(f"/f{i}.bin", data)
    for i in range(4):
        write_model(zoo, f"model{i}", [{"name": files[i][0], "data": files[i][1], "url": server.url(f"/f{i}.bin")}])
    cache = tmp_path / "cache"
    result = download(zoo, tmp_path / "out1", "--all", "--cache_dir", cache, "-j", "2")
    assert result.returncode == 0, result.stderr
    assert server.count() == 4
    result = download(zoo, tmp_path / "out2", "--all", "--cache_dir", cache, "-j", "2")
    assert result.returncode == 0, result.stderr
    assert server.count() == 4  # zero new requests
    for i in range(4):
        assert (tmp_path / f"out2/public/model{i}/f{i}.bin").read_bytes() == files[i][1]
    assert result.stdout.count("cached") == 4


def _imported_yaml(result) -> bool:
    return any(line.split("|")[-1].strip() == "yaml" for line in result.stderr.splitlines())


def test_a_warm_run_takes_its_descriptors_from_the_cache_without_parsing_yaml(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-X", "importtime", str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo),
           "--name", "m", "--cache_dir", str(cache)]
    cold = subprocess.run(cmd + ["-o", str(tmp_path / "cold")], capture_output=True, text=True)
    assert cold.returncode == 0 and _imported_yaml(cold)
    assert (cache / "descriptors.json").is_file()
    memo = cache / "descriptors.json"
    before = (memo.stat().st_ino, memo.stat().st_mtime_ns)
    warm = subprocess.run(cmd + ["-o", str(out)], capture_output=True, text=True)
    assert warm.returncode == 0 and "cached" in warm.stdout and target.read_bytes() == data
    assert not _imported_yaml(warm)  # PyYAML was not even imported
    assert (memo.stat().st_ino, memo.stat().st_mtime_ns) == before  # nothing new: the memo is not rewritten


def test_an_edited_descriptor_is_read_anew_even_with_its_size_and_mtime_restored(server, zoo, one_file, tmp_path):
    """The memo is keyed by a descriptor's text, not by its stat: no edit can hide from it."""
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "first", "--name", "m", "--cache_dir", cache).returncode == 0
    yml = zoo / "public/m/model.yml"
    st = yml.stat()
    good = sha384(data)
    wrong = ("0" if good[0] != "0" else "1") + good[1:]
    yml.write_text(yml.read_text().replace(good, wrong))
    os.utime(yml, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert yml.stat().st_size == st.st_size and yml.stat().st_mtime_ns == st.st_mtime_ns
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 1  # the new checksum: no blob for it, and the server's bytes do not match
    assert f"SHA-384 mismatch: expected {wrong}" in error_lines(result)[0]
    assert not target.exists()


def test_warnings_and_errors_are_the_same_on_a_warm_run(server, zoo, one_file, tmp_path):
    """Only the parse is remembered; validation runs every time."""
    data, out, target = one_file
    yml = zoo / "public/m/model.yml"
    yml.write_text(yml.read_text() + "licence_note: typo of a key\n")
    write_model(zoo, "bad", [{"name": "b.bin", "data": b"x", "url": server.url("/b.bin")}], task_type="no_such_task")
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-X", "importtime", str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--all",
           "--cache_dir", str(cache)]
    runs = [subprocess.run(cmd + ["-o", str(tmp_path / f"out{i}")], capture_output=True, text=True) for i in range(2)]
    assert _imported_yaml(runs[0]) and not _imported_yaml(runs[1])  # the second run parsed nothing
    for r in runs:
        r.stderr = "\n".join(line for line in r.stderr.splitlines() if not line.startswith("import time:"))
    first, second = (error_lines(r) for r in runs)
    assert runs[0].returncode == runs[1].returncode == 1
    assert first == second and any("licence_note" in line for line in first)
    assert any("no_such_task" in line for line in first)


def test_a_corrupt_descriptor_memo_is_ignored_and_rewritten(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "first", "--name", "m", "--cache_dir", cache).returncode == 0
    memo = cache / "descriptors.json"
    memo.write_bytes(b'{"format": 1, "entries": [[')
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and error_lines(result) == [] and target.read_bytes() == data
    assert json.loads(memo.read_bytes())["format"] == 1


def test_corrupt_cache_entry_is_discarded_and_fetched_again(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    assert blob.read_bytes() == data
    blob.write_bytes(b"bit rot" + data[7:])
    out2 = tmp_path / "out2"
    result = download(zoo, out2, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert "cache entry was corrupt; discarded, fetching again" in result.stderr
    assert (out2 / "public/m/m.bin").read_bytes() == data and blob.read_bytes() == data
    assert server.count("/m.bin") == 2


def test_two_processes_share_one_cache(server, zoo, tmp_path):
    data = os.urandom(4 * MB)
    server.add("/big.bin", data, Fault(chunk_size=256 * 1024, chunk_delay=0.05))
    write_model(zoo, "big", [{"name": "big.bin", "data": data, "url": server.url("/big.bin")}])
    cache = tmp_path / "cache"
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--name",
                               "big", "-o", str(tmp_path / f"out{i}"), "--cache_dir", str(cache)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    for i in range(2):
        assert (tmp_path / f"out{i}/public/big/big.bin").read_bytes() == data
    assert server.count("/big.bin") == 1  # one fetched, the other waited and took it from the cache
    assert sorted(p.name for p in (cache / "sha384" / sha384(data)[:2]).iterdir()) == \
        sorted([sha384(data)[2:], sha384(data)[2:] + ".lock", sha384(data)[2:] + ".ok"])


def test_resume_from_a_partial_left_by_an_earlier_run(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    partial = cache / "sha384" / sha384(data)[:2] / (sha384(data)[2:] + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:MB])
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests] == [f"bytes={MB}-"]


def test_a_resumed_partial_that_fails_verification_is_fetched_again_from_zero(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    partial = cache / "sha384" / sha384(data)[:2] / (sha384(data)[2:] + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * MB)  # an earlier run's prefix, but of other bytes
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests] == [f"bytes={MB}-", None]


def test_cache_on_a_full_disk_is_one_line_with_an_end_event(server, zoo, one_file, tmp_path, tmpfs):
    data, out, target = one_file
    cache = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--cache_dir", cache, "--progress_format", "json",
                      "--no_space_check")  # (the write itself meets the full disk)
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert first.startswith("modelzoo-downloader: error: m: no space left on device while writing ")
    assert ".incomplete" in first and summary == "modelzoo-downloader: failed: m"
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1] == {"$type": "model_download_end", "model": "m", "successful": False}
    assert not target.exists() and leftovers(out) == []


def test_copying_out_of_the_cache_onto_a_full_disk_names_the_output(server, zoo, one_file, tmp_path, tmpfs):
    data, _, _ = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "warm", "--name", "m", "--cache_dir", cache).returncode == 0
    out = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--cache_dir", cache, "--no_space_check")
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert first.startswith(f"modelzoo-downloader: error: m: no space left on device while writing {out}/public/m/")
    assert list(out.rglob("*.bin")) == [] and leftovers(out) == []


def test_a_read_only_warm_cache_still_serves(server, zoo, one_file, tmp_path, tmpfs):
    data, out, target = one_file
    mnt = tmpfs("10m")
    assert download(zoo, tmp_path / "warm", "--name", "m", "--cache_dir", mnt).returncode == 0
    before = server.count()
    (mnt / "descriptors.json").unlink()  # so that this run parses, and would save what it parsed
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    result = download(zoo, out, "--name", "m", "--cache_dir", mnt)
    assert result.returncode == 0  # not saving the memo is no error: the one line is the usual one
    assert error_lines(result) == [f"modelzoo-downloader: warning: cache folder {mnt} cannot be written: using "
                                   "what it holds, fetching the rest beside the targets"]
    assert target.read_bytes() == data and server.count() == before and "cached" in result.stdout


def test_a_read_only_cache_without_the_file_downloads_beside_the_target(server, zoo, one_file, tmpfs):
    data, out, target = one_file
    mnt = tmpfs("1m", readonly=True)
    result = download(zoo, out, "--name", "m", "--cache_dir", mnt)
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == [f"modelzoo-downloader: warning: cache folder {mnt} cannot be written: using "
                                   "what it holds, fetching the rest beside the targets"]
    assert target.read_bytes() == data and leftovers(out) == []


def test_lock_file_that_cannot_be_created_is_one_line(server, zoo, one_file, tmp_path, tmpfs):
    data, out, target = one_file
    cache = tmp_path / "cache"
    shard = cache / "sha384" / sha384(data)[:2]
    shard.mkdir(parents=True)
    ro = tmpfs("1m", readonly=True)
    subprocess.run(["mount", "--bind", str(ro), str(shard)], check=True)
    try:
        result = download(zoo, out, "--name", "m", "--cache_dir", cache)
        assert result.returncode == 1
        first, _ = error_lines(result)
        assert f"cannot create lock file {shard}/" in first and "Read-only file system" in first
    finally:
        subprocess.run(["umount", str(shard)], check=False)


def _read_until(proc, text: str, timeout: float) -> str:
    """What proc has written to stdout until a line with text (read from the pipe's file
    descriptor as it comes; the rest is left for communicate()). Fails at the deadline."""
    fd = proc.stdout.fileno()
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"never said {text!r} in {timeout} s; said {seen.decode(errors='replace')!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"stdout closed before {text!r}; said {seen.decode(errors='replace')!r}"
            seen += chunk
    return seen.decode()


def test_a_run_waiting_for_another_says_so(server, zoo, one_file, tmp_path):
    from filelock import FileLock

    data, out, target = one_file
    cache = tmp_path / "cache"
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    blob.parent.mkdir(parents=True)
    lock = FileLock(str(blob) + ".lock")
    with lock:  # another process fetching the same file
        proc = _start(zoo, out, "--name", "m", "--cache_dir", cache)
        said = _read_until(proc, "waiting  public/m/m.bin", timeout=60)  # it reached the lock
        assert proc.poll() is None  # still waiting
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "waiting  public/m/m.bin: another process is fetching it into the cache" in said + stdout
    assert target.read_bytes() == data


def test_a_warm_cache_links_instead_of_copying(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "first", "--name", "m", "--cache_dir", cache).returncode == 0
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "cached" in result.stdout and server.count() == 1
    assert target.stat().st_ino == blob.stat().st_ino  # the same file: no copy
    assert (blob.stat().st_mode & 0o777) == 0o444  # read-only, so edits need intent
    assert target.read_bytes() == data


def test_editing_a_linked_output_file_does_not_corrupt_the_next_run(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    with open(target, "r+b") as f:  # a user (root, so the read-only bit does not stop it) truncates it
        f.truncate(100)
    result = download(zoo, tmp_path / "out2", "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert "cache entry was corrupt; discarded, fetching again" in result.stderr
    assert (tmp_path / "out2/public/m/m.bin").read_bytes() == data and server.count() == 2


def test_a_blob_without_a_matching_stat_record_is_rehashed_before_use(server, zoo, one_file, tmp_path):
    """The stat record is a shortcut, not the check: a blob whose record is missing or stale is
    re-hashed before use. (A same-size edit that also restores the mtime, with the record left in
    place, is the one change the shortcut cannot see: docs/architecture.md says so.)"""
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    st = blob.stat()
    with open(blob, "r+b") as f:
        f.write(bytes([data[0] ^ 1]))  # always differs (a fixed byte matches 1 random blob in 256)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: the record still matches
    blob.with_suffix(".ok").unlink()  # so only a re-hash can tell
    result = download(zoo, tmp_path / "out2", "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "cache entry was corrupt" in result.stderr
    assert (tmp_path / "out2/public/m/m.bin").read_bytes() == data


def test_output_on_another_file_system_gets_a_copy(server, zoo, one_file, tmp_path, tmpfs):
    data, _, _ = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "first", "--name", "m", "--cache_dir", cache).returncode == 0
    out = tmpfs("10m")
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "cached" in result.stdout
    assert (out / "public/m/m.bin").read_bytes() == data and server.count() == 1


def test_a_cache_owned_by_someone_else_is_cloned_where_the_file_system_can(server, zoo, tmp_path, xfs):
    """A team's cache, owned by another user: the kernel refuses a hard link to a file one does
    not own (fs.protected_hardlinks), so on XFS the output shares the blob's blocks (a reflink)
    instead of taking a copy's worth of space."""
    data = os.urandom(8 * MB)
    write_model(zoo, "m", [{"name": "m.bin", "data": data, "url": server.add("/m.bin", data)}])
    cache = xfs / "cache"
    assert download(zoo, xfs / "warm", "--name", "m", "--cache_dir", cache).returncode == 0  # as root
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    user_zoo, out = xfs / "zoo", xfs / "out"
    shutil.copytree(zoo, user_zoo)
    out.mkdir()
    os.chown(out, 65534, 65534)
    os.sync()
    st = os.statvfs(xfs)
    used_before = (st.f_blocks - st.f_bfree) * st.f_frsize
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                             str(SCRIPTS / "downloader.py"), "--models_dir", str(user_zoo), "--name", "m",
                             "-o", str(out), "--cache_dir", str(cache)],
                            capture_output=True, text=True, timeout=120, cwd=xfs)
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == [f"modelzoo-downloader: warning: cache folder {cache} cannot be written: "
                                   "using what it holds, fetching the rest beside the targets"]
    target = out / "public/m/m.bin"
    assert target.read_bytes() == data and "cached" in result.stdout and server.count() == 1
    assert target.stat().st_ino != blob.stat().st_ino and target.stat().st_uid == 65534  # not a link
    os.sync()
    st = os.statvfs(xfs)
    assert (st.f_blocks - st.f_bfree) * st.f_frsize - used_before < MB  # no copy: shared blocks
    ln = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "ln", str(blob),
                         str(out / "try")], capture_output=True, text=True)
    assert ln.returncode != 0 and "Operation not permitted" in ln.stderr  # why a link was not possible


def test_a_folder_where_a_blob_should_be_is_replaced(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    (blob / "inside").mkdir(parents=True)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and blob.read_bytes() == data


@pytest.mark.parametrize("kind", ["link to a file elsewhere", "dangling link"])
def test_a_symlink_at_the_target_is_replaced_not_written_through_with_a_warm_cache(server, zoo, one_file, tmp_path,
                                                                                   kind):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "warm", "--name", "m", "--cache_dir", cache).returncode == 0
    elsewhere = tmp_path / "elsewhere.bin"
    if kind == "link to a file elsewhere":
        elsewhere.write_bytes(b"someone else's file")
    target.parent.mkdir(parents=True)
    target.symlink_to(elsewhere)
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "cached" in result.stdout
    assert not target.is_symlink() and target.read_bytes() == data
    if kind == "link to a file elsewhere":
        assert elsewhere.read_bytes() == b"someone else's file"
    else:
        assert not elsewhere.exists()


def test_a_present_target_is_present_not_cached(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "present" in result.stdout and "cached" not in result.stdout


def test_a_descriptor_whose_size_disagrees_with_a_cached_blob_gets_no_link(server, zoo, tmp_path):
    """Two descriptors name the same SHA-384, one with the wrong size: the blob is neither handed
    out for the wrong one nor discarded as corrupt (it is the descriptor that is wrong)."""
    data = os.urandom(100_000)
    url = server.add("/d.bin", data)
    write_model(zoo, "right", [{"name": "d.bin", "data": data, "url": url}])
    write_model(zoo, "wrong", [{"name": "d.bin", "size": len(data) + 1, "checksum": sha384(data), "url": url}])
    cache = tmp_path / "cache"
    assert download(zoo, tmp_path / "out", "--name", "right", "--cache_dir", cache).returncode == 0
    result = download(zoo, tmp_path / "out", "--name", "wrong", "--cache_dir", cache)
    assert result.returncode == 1
    assert error_lines(result)[0] == ("modelzoo-downloader: error: wrong: public/wrong/d.bin (the descriptor's size; "
                                      "the cache holds the file with its SHA-384): size mismatch: expected "
                                      f"{len(data) + 1} bytes, got {len(data)}")
    assert not (tmp_path / "out/public/wrong/d.bin").exists()
    before = server.count()  # the blob was not discarded: the right descriptor still gets it from the cache
    result = download(zoo, tmp_path / "out2", "--name", "right", "--cache_dir", cache)
    assert result.returncode == 0 and "cached" in result.stdout and server.count() == before


def test_a_wrong_file_at_the_target_is_replaced_even_with_a_warm_cache(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    assert download(zoo, out, "--name", "m", "--cache_dir", cache).returncode == 0
    target.unlink()
    target.write_bytes(b"stale" + data[5:])  # same size, not the blob's inode
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0 and "present" not in result.stdout and "cached" in result.stdout
    assert target.read_bytes() == data
