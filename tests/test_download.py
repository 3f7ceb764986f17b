"""The downloader against a real HTTP server on 127.0.0.1 that injects faults.

Every test checks the exit code, what was said on stderr, and the bytes at the final path.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from conftest import SCRIPTS, run_tool, sha384, write_model

from modelzoo.devtools.loopback import Fault

MB = 1 << 20


def error_lines(result) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a download may leave behind (there must be none)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith((".part", ".tmp"))
                  or ".unpack-" in p.name)


@pytest.fixture
def one_file(server, zoo, tmp_path):
    """A zoo with one model 'm' of one 3 MB file served at /m.bin; returns (data, out_dir, path of the file)."""
    data = os.urandom(3 * MB)
    url = server.add("/m.bin", data)
    write_model(zoo, "m", [{"name": "m.bin", "data": data, "url": url}])
    out = tmp_path / "out"
    return data, out, out / "public" / "m" / "m.bin"


def download(zoo, out, *args, **kw):
    return run_tool("downloader", "--models_dir", zoo, "-o", out, *args, **kw)


def test_plain_download(server, zoo, one_file):
    data, out, target = one_file
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert "SHA-384 verified" in result.stdout
    assert leftovers(out) == []
    # present and verified: not fetched again
    before = server.count()
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 0 and server.count() == before and "present" in result.stdout


def test_a_bad_file_at_the_target_is_replaced(server, zoo, one_file):
    data, out, target = one_file
    target.parent.mkdir(parents=True)
    target.write_bytes(b"stale")
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_connection_lost_mid_body_is_resumed_with_range(server, zoo, one_file, reset):
    data, out, target = one_file
    # with reset: the server waits until the client has read every byte sent, then sends RST
    server.fault("/m.bin", Fault(times=1, drop_after=MB + 123, reset=reset, stall_seconds=0.5 if reset else 0))
    result = download(zoo, out, "--name", "m", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    first, second = [r.headers.get("Range") for r in server.requests]
    # resumed, not restarted: from the last whole chunk that reached the disk
    assert first is None and second is not None
    assert MB <= int(second.removeprefix("bytes=").removesuffix("-")) <= MB + 123, second


def test_truncated_body_without_retries_fails_cleanly(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(drop_after=MB))
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert first.startswith("modelzoo-downloader: error: m: public/m/m.bin: ")
    assert "connection broken before the whole file arrived (after 1 attempt)" in first
    assert summary == "modelzoo-downloader: failed: m"
    assert not target.exists() and leftovers(out) == []


def test_wrong_checksum(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(body=data[:-1] + bytes([data[-1] ^ 1])))
    result = download(zoo, out, "--name", "m", "--num_attempts", "3")
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert f"SHA-384 mismatch: expected {sha384(data)}, got " in first
    assert not target.exists() and leftovers(out) == []
    assert server.count("/m.bin") == 1  # the same bytes again would not help


def test_longer_file_is_cut_off_and_rejected(server, zoo, one_file, tmpfs):
    data, _, _ = one_file
    # 40 MB more than the file, onto a 5 MB disk: a downloader that wrote first and checked
    # afterwards would report a full disk, not the size mismatch
    server.fault("/m.bin", Fault(body=data + os.urandom(40 * MB)))
    _assert_cut_off(zoo, tmpfs("5m"), "m", len(data))


def _assert_cut_off(zoo, out: Path, model: str, size: int) -> None:
    """Downloading `model` fails on its size, leaving nothing: the kernel refuses any write that
    would make a file longer than `size` (RLIMIT_FSIZE), so a single byte written beyond it
    would fail the run with 'File too large' instead."""
    result = download(zoo, out, "--name", model, max_file_size=size)
    assert result.returncode == 1
    assert f"size mismatch: expected {size} bytes, got more than {size}" in error_lines(result)[0]
    assert list((out / "public" / model).iterdir()) == [] and leftovers(out) == []


def test_server_error_then_success(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(times=1, status=500))
    result = download(zoo, out, "--name", "m", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and server.count("/m.bin") == 2


def test_server_error_without_retries(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(status=503))
    result = download(zoo, out, "--name", "m", "--num_attempts", "2")
    assert result.returncode == 1
    assert f"HTTP 503 Service Unavailable for {server.url('/m.bin')}" in error_lines(result)[0]
    assert server.count("/m.bin") == 2 and not target.exists()


def test_429_retry_after_is_honoured(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(times=1, status=429, retry_after="2"))
    result = download(zoo, out, "--name", "m", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    first, second = server.requests
    assert second.time - first.time >= 1.9  # waited as asked


def test_404_is_not_retried(server, zoo, tmp_path):
    write_model(zoo, "gone", [{"name": "g.bin", "data": b"x", "url": server.url("/missing.bin")}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "gone", "--num_attempts", "5")
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert first == (f"modelzoo-downloader: error: gone: public/gone/g.bin: HTTP 404 Not Found for "
                     f"{server.url('/missing.bin')}")
    assert summary == "modelzoo-downloader: failed: gone"
    assert server.count() == 1 and leftovers(out) == []
    assert not (out / "public/gone/g.bin").exists()


def test_range_ignored(server, zoo, tmp_path):
    """First answer breaks off; the retry asks for a Range, the server sends the whole file (200)."""
    data = os.urandom(2 * MB)
    server.add("/r.bin", data, Fault(times=1, drop_after=MB // 2))
    write_model(zoo, "r", [{"name": "r.bin", "data": data, "url": server.url("/r.bin")}])
    out = tmp_path / "out"

    # after the first (dropped) request, ignore ranges for good
    original = server._record

    def record(method, path, headers, target):
        fault = original(method, path, headers, target)
        return fault or Fault(ignore_range=True)

    server._record = record
    result = download(zoo, out, "--name", "r", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "public/r/r.bin").read_bytes() == data
    assert server.requests[1].headers.get("Range") == f"bytes={MB // 2}-"


def test_stall_longer_than_timeout(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(stall_after=MB, stall_seconds=30))
    started = time.monotonic()
    result = download(zoo, out, "--name", "m", "--timeout", "1")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "no data for 1 s (stalled or unreachable server)" in error_lines(result)[0]
    assert elapsed < 20  # failed after the timeout, did not wait for the server
    assert not target.exists() and leftovers(out) == []


def test_stall_then_resume(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(times=1, stall_after=MB, stall_seconds=30))
    result = download(zoo, out, "--name", "m", "--timeout", "1", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests] == [None, f"bytes={MB}-"]  # resumed, not restarted


def test_redirect_chain_and_loop(server, zoo, tmp_path):
    data = os.urandom(MB)
    server.add("/final.bin", data)
    for i in range(3):
        server.add(f"/hop{i}", b"", Fault(redirect_to=f"/hop{i + 1}" if i < 2 else "/final.bin"))
    server.add("/loop-a", b"", Fault(redirect_to="/loop-b"))
    server.add("/loop-b", b"", Fault(redirect_to="/loop-a"))
    write_model(zoo, "chain", [{"name": "c.bin", "data": data, "url": server.url("/hop0")}])
    write_model(zoo, "loop", [{"name": "l.bin", "data": data, "url": server.url("/loop-a")}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "chain")
    assert result.returncode == 0, result.stderr
    assert (out / "public/chain/c.bin").read_bytes() == data

    started = time.monotonic()
    result = download(zoo, out, "--name", "loop")
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert "redirect loop or more than 10 redirects" in error_lines(result)[0]
    assert not (out / "public/loop/l.bin").exists()


def test_gzip_on_the_wire_is_decoded_once(server, zoo, tmp_path):
    """A server that compresses the body on the wire (Content-Encoding: gzip) although asked not to:
    the checksum decides, and the descriptor's file is what lands."""
    text = b"weights " * 200_000
    server.add("/w.bin", text, Fault(gzip=True))
    write_model(zoo, "w", [{"name": "w.bin", "data": text, "url": server.url("/w.bin")}])
    # a real .gz file, also served with Content-Encoding: gzip (a common misconfiguration):
    import gzip as gz

    archive = gz.compress(text, mtime=0)
    server.add("/a.gz", text, Fault(gzip=True))
    write_model(zoo, "a", [{"name": "a.gz", "data": archive, "url": server.url("/a.gz")}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "w,a")
    assert result.returncode == 0, result.stderr
    assert (out / "public/w/w.bin").read_bytes() == text  # decoded once
    assert (out / "public/a/a.gz").read_bytes() == archive  # kept compressed, as the descriptor says
    assert all(r.headers.get("Accept-Encoding") == "identity" for r in server.requests)


def test_slow_chunks(server, zoo, tmp_path):
    data = os.urandom(512 * 1024)
    server.add("/slow.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.3))
    write_model(zoo, "slow", [{"name": "slow.bin", "data": data, "url": server.url("/slow.bin")}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "slow", "--timeout", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "public/slow/slow.bin").read_bytes() == data


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


def _zoo_of_small_models(server, zoo, count: int, bad: str | None = None) -> None:
    for i in range(count):
        data = os.urandom(1000)
        url = server.add(f"/f{i}.bin", data)
        write_model(zoo, f"m{i:02}", [{"name": "f.bin", "data": data, "url": url}])
    if bad:  # a model whose file never matches its checksum
        write_model(zoo, bad, [{"name": "f.bin", "data": b"promised", "url": server.add("/bad.bin", b"served")}])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_reader_that_stops_reading_stdout_does_not_stop_the_downloads(server, zoo, tmp_path, fmt):
    """`downloader.py --all | head -1`: the progress lines stop, the work does not."""
    _zoo_of_small_models(server, zoo, 30)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--all",
                             "-o", str(out), "--progress_format", fmt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline()  # the first line, then the reader goes away
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == ""
    assert len(list(out.glob("public/*/f.bin"))) == 30


def test_a_reader_of_both_streams_that_goes_away_still_gets_an_honest_exit_code(server, zoo, tmp_path):
    """`downloader.py --all 2>&1 | head -1` with a model that fails: its error line cannot be
    written, but it is still a failure (exit 1), and every other model is still downloaded."""
    _zoo_of_small_models(server, zoo, 30, bad="m15bad")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--all",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout.readline()
    proc.stdout.close()
    proc.wait(timeout=60)
    assert proc.returncode == 1
    assert len(list(out.glob("public/m??/f.bin"))) == 30 and not (out / "public/m15bad/f.bin").exists()


def test_stdout_closed_or_full_from_the_start(server, zoo, tmp_path):
    """`>&-` (no stdout at all) and `>/dev/full` (every write fails): the files still arrive; a
    full stdout is said once on stderr."""
    _zoo_of_small_models(server, zoo, 5)
    cmd = [sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--all", "--progress_format"]
    closed = subprocess.run(["bash", "-c", 'exec "$@" >&-', "-", *cmd, "text", "-o", str(tmp_path / "a")],
                            capture_output=True, text=True, timeout=60)
    assert closed.returncode == 0 and closed.stderr == ""
    assert len(list((tmp_path / "a").glob("public/*/f.bin"))) == 5
    with open("/dev/full", "w") as full:
        result = subprocess.run([*cmd, "json", "-o", str(tmp_path / "b")], stdout=full, stderr=subprocess.PIPE,
                                text=True, timeout=60)
    assert result.returncode == 0
    assert result.stderr.splitlines() == ["modelzoo-downloader: warning: cannot write progress to stdout "
                                          "(No space left on device); going on without it"]
    assert len(list((tmp_path / "b").glob("public/*/f.bin"))) == 5


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


@pytest.mark.parametrize("with_cache", [False, True], ids=["no-cache", "cache"])
def test_sigint_stops_within_a_second_and_cleans_up(server, zoo, tmp_path, with_cache):
    data = os.urandom(8 * MB)
    server.add("/slow.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.1))
    write_model(zoo, "slow", [{"name": "slow.bin", "data": data, "url": server.url("/slow.bin")}])
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    extra = ["--cache_dir", str(cache)] if with_cache else []
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "--name",
                             "slow", "-o", str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    partial_dir = cache if with_cache else out
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        partials = [p for p in partial_dir.rglob("*") if p.name.endswith((".part", ".incomplete"))]
        if partials and partials[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("download never started")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("modelzoo-downloader: error: interrupted") and len(lines) == 1, stderr
    assert took < 1.5, took
    assert leftovers(out) == [] and not (out / "public/slow/slow.bin").exists()
    if with_cache:  # the partial download stays in the cache, to be resumed
        partial = next(cache.rglob("*.incomplete"))
        kept = partial.stat().st_size
        assert 0 < kept < len(data)
        assert data.startswith(partial.read_bytes())
        server.faults.clear()  # now serve fast
        result = download(zoo, out, "--name", "slow", "--cache_dir", cache)
        assert result.returncode == 0
        assert server.requests[-1].headers.get("Range") == f"bytes={kept}-"
        assert (out / "public/slow/slow.bin").read_bytes() == data


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


def test_full_disk(server, zoo, one_file, tmpfs):
    data, _, _ = one_file
    out = tmpfs("1m")
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert "no space left on device while writing" in first
    assert list(out.rglob("*.bin")) == [] and leftovers(out) == []


def test_read_only_output_folder(server, zoo, one_file, tmpfs):
    out = tmpfs("1m", readonly=True)
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert f"cannot create folder {out}/public/m: Read-only file system" in first


def test_parallel_jobs_and_summary(server, zoo, tmp_path):
    payloads = {}
    for i in range(6):
        payloads[i] = os.urandom(200_000)
        server.add(f"/p{i}.bin", payloads[i])
        url = server.url(f"/p{i}.bin") if i != 4 else server.url("/nope.bin")
        write_model(zoo, f"par{i}", [{"name": f"p{i}.bin", "data": payloads[i], "url": url}])
    server.fault("/p0.bin", Fault(chunk_size=20_000, chunk_delay=0.1))  # slow enough for the others to overlap
    out = tmp_path / "out"
    result = download(zoo, out, "--all", "-j", "3")
    assert result.returncode == 1
    assert server.max_active >= 2  # the jobs ran at once
    lines = error_lines(result)
    assert lines[-1] == "modelzoo-downloader: failed: par4"
    for i in range(6):
        target = out / f"public/par{i}/p{i}.bin"
        assert (target.read_bytes() == payloads[i]) if i != 4 else not target.exists()


def test_file_mirror_is_tried_first(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    mirror = tmp_path / "mirror"
    (mirror / "public/m").mkdir(parents=True)
    (mirror / "public/m/m.bin").write_bytes(data)
    result = download(zoo, out, "--name", "m", "--mirror", mirror.as_uri())
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and server.count() == 0


def test_http_mirror_falls_back_to_the_source(server, zoo, one_file):
    data, out, target = one_file
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.path for r in server.requests] == ["/mirror/public/m/m.bin", "/m.bin"]


def test_bad_mirror_file_falls_back_to_the_source(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    mirror = tmp_path / "mirror"
    (mirror / "public/m").mkdir(parents=True)
    (mirror / "public/m/m.bin").write_bytes(b"not it")
    result = download(zoo, out, "--name", "m", "--mirror", mirror.as_uri())
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and server.count() == 1


def test_proxy_from_environment(server, zoo, tmp_path):
    data = os.urandom(100_000)
    server.add("/via-proxy.bin", data)
    write_model(zoo, "px", [{"name": "px.bin", "data": data, "url": "http://models.example.invalid/via-proxy.bin"}])
    out = tmp_path / "out"
    env = {"HTTP_PROXY": server.base_url, "http_proxy": server.base_url, "NO_PROXY": "", "no_proxy": ""}
    result = download(zoo, out, "--name", "px", env=env)
    assert result.returncode == 0, result.stderr
    assert (out / "public/px/px.bin").read_bytes() == data
    assert server.requests[0].target == "http://models.example.invalid/via-proxy.bin"


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, content in members:
            if content is not None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _link_chain(kind: bytes) -> list:
    """l0 -> ., l1 -> l0/.., l2 -> l1/.., ...: each link, read as text, stays inside; followed
    through the links before it, l1 already points one folder up."""
    chain = [(_member("l0", kind, "."), None)]
    chain += [(_member(f"l{i}", kind, f"l{i - 1}/.."), None) for i in range(1, 5)]
    return chain + [(_member("l4/PWNED.txt"), b"pwned")]


# Each case with the words of *our* refusal: tarfile's own 'data' filter would refuse most of
# these too, but with other words, so a passing test proves our checks ran first.
HOSTILE_TARS = {
    "absolute": ([(_member("/abs-evil.txt"), b"x")], "member '/abs-evil.txt' has an absolute path"),
    "dotdot": ([(_member("ok/../../dotdot-evil.txt"), b"x")],
               "member 'ok/../../dotdot-evil.txt' would be written outside the model folder"),
    "symlink-out": ([(_member("link", tarfile.SYMTYPE, "../../outside"), None)],
                    "link 'link' -> '../../outside' points outside the model folder"),
    "symlink-abs": ([(_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)],
                    "link 'link' points to the absolute path '/etc/passwd'"),
    "hardlink-out": ([(_member("hard", tarfile.LNKTYPE, "../outside"), None)],
                     "hard link 'hard' -> '../outside' names no earlier file of the archive"),
    "hardlink-missing": ([(_member("hard", tarfile.LNKTYPE, "nothing"), None)],
                         "hard link 'hard' -> 'nothing' names no earlier file of the archive"),
    # a link checked alone stays inside; a later link changes what it means
    "later-link-redirects": ([(_member("a", tarfile.SYMTYPE, "c/d/b/../../../OUTSIDE"), None),
                              (_member("c/d", tarfile.DIRTYPE), None),
                              (_member("c/d/b", tarfile.SYMTYPE, "../.."), None)],
                             "link 'a' -> 'c/d/b/../../../OUTSIDE' points outside the model folder"),
    "link-loop": ([(_member("a", tarfile.SYMTYPE, "b"), None), (_member("b", tarfile.SYMTYPE, "a"), None)],
                  "too many levels of links"),
    "too-deep": ([(_member("d/" * 300 + "f"), b"x")], "has a path too long or too deep"),
    "device": ([(_member("dev", tarfile.CHRTYPE), None)], "member 'dev' is a device or fifo"),
    "fifo": ([(_member("fifo", tarfile.FIFOTYPE), None)], "member 'fifo' is a device or fifo"),
    "link-chain": (_link_chain(tarfile.SYMTYPE), "link 'l1' -> 'l0/..' points outside the model folder"),
    "through-a-link": ([(_member("sub", tarfile.DIRTYPE), None), (_member("l", tarfile.SYMTYPE, "sub"), None),
                        (_member("l/x.txt"), b"x")],
                       "member 'l/x.txt' would be written through the link 'l'"),
}


def _archive_model(server, zoo, name: str, archive: bytes, fmt: str, filename: str):
    server.add(f"/{filename}", archive)
    write_model(zoo, name, [{"name": filename, "data": archive, "url": server.url(f"/{filename}")}],
                postprocessing=[{"$type": "unpack_archive", "file": filename, "format": fmt}])


def _escapes(out: Path) -> list[Path]:
    """Anything a hostile archive could have written outside the model folder (out/public/evil):
    beside it, above it, at the top of out, or above out."""
    names = ("abs-evil.txt", "dotdot-evil.txt", "PWNED.txt", "escape.txt", "outside")
    places = [out / "public/evil", out / "public", out, out.parent, Path("/")]
    return [p / n for p in places for n in names if (p / n).exists() or (p / n).is_symlink()]


def _assert_refused(result, out: Path, model: str, archive_name: str, words: str) -> None:
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert first.startswith(f"modelzoo-downloader: error: {model}: ") and archive_name in first
    assert words in first, first
    assert sorted(p.name for p in (out / "public" / model).iterdir()) == [archive_name]  # nothing unpacked
    assert _escapes(out) == [] and leftovers(out) == []


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(server, zoo, tmp_path, case):
    members, words = HOSTILE_TARS[case]
    archive = _tar([(_member("model/good.txt"), b"fine")] + members)
    _archive_model(server, zoo, "evil", archive, "gztar", "evil.tar.gz")
    out = tmp_path / "out"
    _assert_refused(download(zoo, out, "--name", "evil"), out, "evil", "evil.tar.gz", words)


def _zip(members: list[tuple[str, int, bytes]]) -> bytes:
    """(name, st_mode, content) members; a link's content is its target."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, mode, content in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, content)
    return buf.getvalue()


LINK, FILE = 0o120777, 0o100644
HOSTILE_ZIPS = {
    "dotdot": ([("../../escape.txt", FILE, b"bad")], "'../../escape.txt' would be written outside the model folder"),
    "symlink-out": ([("link", LINK, b"../../../etc/passwd")],
                    "link 'link' -> '../../../etc/passwd' points outside the model folder"),
    # the chain of the security report: before the fix, PWNED.txt landed three folders up
    "link-chain": ([("l0", LINK, b".")] + [(f"l{i}", LINK, f"l{i - 1}/..".encode()) for i in range(1, 5)]
                   + [("l4/PWNED.txt", FILE, b"pwned")], "link 'l1' -> 'l0/..' points outside the model folder"),
    "through-a-link": ([("sub/", 0o040755, b""), ("l", LINK, b"sub"), ("l/x.txt", FILE, b"x")],
                       "member 'l/x.txt' would be written through the link 'l'"),
    "fifo": ([("pipe", 0o010644, b"")], "member 'pipe' is a device, fifo or socket"),
    "char-device": ([("tty", 0o020644, b"")], "member 'tty' is a device, fifo or socket"),
    "block-device": ([("disk", 0o060644, b"")], "member 'disk' is a device, fifo or socket"),
    "later-link-redirects": ([("a", LINK, b"c/d/b/../../../OUTSIDE"), ("c/d/", 0o040755, b""),
                              ("c/d/b", LINK, b"../..")],
                             "link 'a' -> 'c/d/b/../../../OUTSIDE' points outside the model folder"),
    # each link names the previous one twice: resolving naively doubles the work per link
    "link-bomb": ([("l0", LINK, b".")] + [(f"l{i}", LINK, f"l{i - 1}/l{i - 1}".encode()) for i in range(1, 40)],
                  "too many levels of links"),
    # a 'link' whose target is a megabyte: refused before it is read into memory
    "huge-link-target": ([("big", LINK, b"a" * (1 << 20))], "link 'big' has a target of 1048576 bytes"),
    "empty-name": ([("", FILE, b"x")], "a member has an empty name"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused(server, zoo, tmp_path, case):
    members, words = HOSTILE_ZIPS[case]
    _archive_model(server, zoo, "evil", _zip([("model/good.txt", FILE, b"fine")] + members), "zip", "e.zip")
    out = tmp_path / "out"
    _assert_refused(download(zoo, out, "--name", "evil"), out, "evil", "e.zip", words)


def test_links_that_stay_inside_are_kept(server, zoo, tmp_path):
    archive = _zip([("model/w.bin", FILE, b"weights"), ("model/alias", LINK, b"w.bin"),
                    ("top", LINK, b"model/./w.bin"), ("dir", LINK, b"model")])
    _archive_model(server, zoo, "links", archive, "zip", "l.zip")
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "links")
    assert result.returncode == 0, result.stderr
    model = out / "public/links"
    assert (model / "model/alias").read_bytes() == (model / "top").read_bytes() == b"weights"
    assert os.readlink(model / "dir") == "model" and (model / "dir/w.bin").read_bytes() == b"weights"


def test_good_archives_unpack_and_regex_replace(server, zoo, tmp_path):
    archive = _tar([(_member("model/config.txt"), b"threshold = 0.5\nthreshold = 0.5\n"),
                    (_member("model/weights.bin"), b"\x00" * 100),
                    (_member("model/alias", tarfile.SYMTYPE, "weights.bin"), None)])
    server.add("/good.tar.gz", archive)
    write_model(zoo, "good", [{"name": "good.tar.gz", "data": archive, "url": server.url("/good.tar.gz")}],
                postprocessing=[
                    {"$type": "unpack_archive", "file": "good.tar.gz", "format": "gztar"},
                    {"$type": "regex_replace", "file": "model/config.txt", "pattern": "0\\.5",
                     "replacement": "0.25", "count": 2},
                ])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inside/readme.txt", "hello")
    server.add("/z.zip", buf.getvalue())
    write_model(zoo, "zipped", [{"name": "z.zip", "data": buf.getvalue(), "url": server.url("/z.zip")}],
                postprocessing=[{"$type": "unpack_archive", "file": "z.zip", "format": "zip"}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "good,zipped", "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    model = out / "public/good"
    assert (model / "model/config.txt").read_text() == "threshold = 0.25\nthreshold = 0.25\n"
    assert os.readlink(model / "model/alias") == "weights.bin"
    assert not (model / "good.tar.gz").exists()  # the archive is removed once unpacked
    assert (out / "public/zipped/inside/readme.txt").read_text() == "hello"
    events = [json.loads(line)["$type"] for line in result.stdout.splitlines()]
    assert "model_postprocessing_begin" in events and "model_postprocessing_end" in events
    assert leftovers(out) == []


def test_regex_replace_count_mismatch_leaves_file_untouched(server, zoo, tmp_path):
    text = b"a = 1\nb = 1\n"
    server.add("/cfg.txt", text)
    write_model(zoo, "cfg", [{"name": "cfg.txt", "data": text, "url": server.url("/cfg.txt")}],
                postprocessing=[{"$type": "regex_replace", "file": "cfg.txt", "pattern": "a = 1",
                                 "replacement": "a = 2", "count": 2}])
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "cfg")
    assert result.returncode == 1
    assert error_lines(result)[0].endswith(f"regex_replace: pattern 'a = 1' found 1 times in "
                                           f"{out / 'public/cfg/cfg.txt'}, expected 2")
    assert (out / "public/cfg/cfg.txt").read_bytes() == text and leftovers(out) == []


def test_json_events_match_omz_downloader(server, zoo, tmp_path):
    a, b = os.urandom(300_000), os.urandom(200_000)
    server.add("/a.bin", a)
    server.add("/b.bin", b)
    write_model(zoo, "ev", [{"name": "FP32/ev.xml", "data": a, "url": server.url("/a.bin")},
                            {"name": "FP32/ev.bin", "data": b, "url": server.url("/b.bin")}])

    def events(stdout: str) -> list[dict]:
        return [e for e in map(json.loads, stdout.splitlines()) if e["$type"] != "model_file_download_progress"]

    ours = download(zoo, tmp_path / "ours", "--name", "ev", "--progress_format", "json")
    peer = subprocess.run([sys.executable, "-m", "modelzoo.devtools.peer", "downloader", str(zoo), "--name", "ev",
                           "-o", str(tmp_path / "peer"), "--progress_format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert ours.returncode == 0 and peer.returncode == 0, (ours.stderr, peer.stderr)
    assert events(ours.stdout) == events(peer.stdout)
    progress = [json.loads(line) for line in ours.stdout.splitlines() if "progress" in line]
    assert progress and progress[-1]["size"] == len(b)
    assert set(progress[0]) == {"$type", "model", "model_file", "size"}
    assert (tmp_path / "ours/public/ev/FP32/ev.xml").read_bytes() == (tmp_path / "peer/public/ev/FP32/ev.xml").read_bytes()


def test_downloader_does_not_import_tensorflow_or_openvino(server, zoo, tmp_path):
    """A whole download (cache, verification, unpacking, JSON events) in one process that then
    lists what it imported: none of the conversion stack."""
    archive = _zip([("model/w.bin", FILE, b"weights")])
    _archive_model(server, zoo, "light", archive, "zip", "l.zip")
    out, cache = tmp_path / "out", tmp_path / "cache"
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from modelzoo.cli import downloader\n"
            "rc = downloader.main(['--models_dir', %r, '--name', 'light', '-o', %r, '--cache_dir', %r,"
            " '--progress_format', 'json'])\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'openvino', 'numpy', 'keras', 'boto3')]\n"
            "print('RC', rc, 'IMPORTED', bad)\n") % (str(SCRIPTS.parent), str(zoo), str(out), str(cache))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "RC 0 IMPORTED []" in result.stdout, result.stdout + result.stderr
    assert (out / "public/light/model/w.bin").read_bytes() == b"weights"


def test_connection_refused_is_retried_by_urllib3_then_reported(zoo, tmp_path):
    import socket

    with socket.socket() as s:  # a port on which nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_model(zoo, "down", [{"name": "d.bin", "data": b"x", "url": f"http://127.0.0.1:{port}/d.bin"}])
    out = tmp_path / "out"
    started = time.monotonic()
    result = download(zoo, out, "--name", "down", "--num_attempts", "3")
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert f"http://127.0.0.1:{port}/d.bin: cannot connect: " in first and "(after 3 attempts)" in first
    assert "Connection refused" in first
    assert time.monotonic() - started >= 1.0  # back-off: the third try waited a second
    assert summary == "modelzoo-downloader: failed: down" and not out.joinpath("public/down/d.bin").exists()


def test_a_server_that_never_answers_the_connection_times_out(zoo, tmp_path):
    """A connect that hangs (a far server dropping SYNs): a listening socket whose backlog is
    full drops new connection attempts, so the client's connect waits until --timeout."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler = socket.create_connection(("127.0.0.1", port))  # fills the backlog of one
        try:
            write_model(zoo, "far", [{"name": "f.bin", "data": b"x", "url": f"http://127.0.0.1:{port}/f.bin"}])
            out = tmp_path / "out"
            result = download(zoo, out, "--name", "far", "--timeout", "1", "--num_attempts", "2", timeout=60)
        finally:
            filler.close()
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert first == (f"modelzoo-downloader: error: far: public/far/f.bin: http://127.0.0.1:{port}/f.bin: no "
                     "connection within 1 s (unreachable server, or one dropping new connections) (after 2 attempts)")
    assert summary == "modelzoo-downloader: failed: far"
    assert not out.joinpath("public/far/f.bin").exists() and leftovers(out) == []


# ----------------------------------------------------------------------------- hardening (issue 8)

def test_gzip_body_that_is_not_gzip_is_bounded(server, zoo, tmp_path, tmpfs):
    """Content-Encoding: gzip over 40 MB that are not gzip, for a 1,000-byte file, onto a 5 MB
    disk: neither reading (as sent, decoded) may write more than 1,000 bytes."""
    data = os.urandom(1000)
    server.add("/g.bin", data, Fault(body=os.urandom(40 * MB), content_encoding="gzip"))
    write_model(zoo, "g", [{"name": "g.bin", "data": data, "url": server.url("/g.bin")}])
    out = tmpfs("5m")
    result = download(zoo, out, "--name", "g", max_file_size=1000)  # no file may grow past 1,000 bytes
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert "size mismatch: expected 1000 bytes, got more than 1000" in first, first
    assert not (out / "public/g/g.bin").exists() and leftovers(out) == [] and list(out.rglob(".*")) == []


def test_gzip_with_junk_after_the_stream_is_refused(server, zoo, tmp_path, tmpfs):
    data = b"weights " * 1000
    server.add("/j.bin", data, Fault(gzip=True, gzip_junk=os.urandom(40 * MB)))
    write_model(zoo, "j", [{"name": "j.bin", "data": data, "url": server.url("/j.bin")}])
    _assert_cut_off(zoo, tmpfs("5m"), "j", len(data))


def test_unsupported_encoding_from_a_mirror_falls_back_to_the_source(server, zoo, one_file):
    data, out, target = one_file
    server.add("/mirror/public/m/m.bin", data, Fault(content_encoding="br"))
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.path for r in server.requests] == ["/mirror/public/m/m.bin", "/m.bin"]


def test_redirect_loop_on_a_mirror_falls_back_to_the_source(server, zoo, one_file):
    data, out, target = one_file
    server.add("/mirror/public/m/m.bin", b"", Fault(redirect_to="/mirror/public/m/m.bin"))
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and server.requests[-1].path == "/m.bin"


def test_unsupported_encoding_from_the_source_is_one_line(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(content_encoding="br"))
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 1
    assert "unsupported Content-Encoding 'br'" in error_lines(result)[0]
    assert not target.exists() and leftovers(out) == []


def test_a_prefix_from_a_mirror_is_not_continued_from_the_source(server, zoo, one_file):
    data, out, target = one_file
    server.add("/mirror/public/m/m.bin", data, Fault(drop_after=MB))
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [(r.path, r.headers.get("Range")) for r in server.requests] == \
        [("/mirror/public/m/m.bin", None), ("/m.bin", None)]


@pytest.mark.parametrize("wrong", ["start", "total"])
def test_206_with_a_wrong_content_range_restarts_from_zero(server, zoo, one_file, wrong):
    data, out, target = one_file
    # the resumed request gets a 206 that starts elsewhere than asked: not to be glued on
    server.fault("/m.bin", Fault(times=1, drop_after=MB, stall_seconds=0.3, reset=True))
    original = server._record

    def record(method, path, headers, target_):
        fault = original(method, path, headers, target_)
        if fault is None and headers.get("Range"):
            a = int(headers["Range"].removeprefix("bytes=").rstrip("-"))
            return Fault(content_range=f"bytes 5-{len(data) - 1}/{len(data)}" if wrong == "start"
                         else f"bytes {a}-{len(data) - 1}/{len(data) + 1}")
        return fault

    server._record = record
    result = download(zoo, out, "--name", "m", "--num_attempts", "2")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests][0::2] == [None, None]  # whole file asked again
    assert server.requests[1].headers.get("Range", "").startswith("bytes=")


def test_416_restarts_from_zero(server, zoo, one_file, tmp_path):
    data, out, target = one_file
    cache = tmp_path / "cache"
    partial = cache / "sha384" / sha384(data)[:2] / (sha384(data)[2:] + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:MB])
    server.fault("/m.bin", Fault(times=1, status=416))
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests] == [f"bytes={MB}-", None]


def test_403_is_not_retried(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(status=403))
    result = download(zoo, out, "--name", "m", "--num_attempts", "4")
    assert result.returncode == 1
    assert f"HTTP 403 Forbidden for {server.url('/m.bin')}" in error_lines(result)[0]
    assert server.count("/m.bin") == 1


def test_timeout_waiting_for_headers_is_retried(zoo, tmp_path):
    from modelzoo.devtools.loopback import LoopbackServer

    data = os.urandom(1000)
    with LoopbackServer(latency=2.5) as slow:
        write_model(zoo, "h", [{"name": "h.bin", "data": data, "url": slow.add("/h.bin", data)}])
        out = tmp_path / "out"
        result = download(zoo, out, "--name", "h", "--timeout", "1", "--num_attempts", "2")
        assert result.returncode == 1
        assert "no data for 1 s (stalled or unreachable server) (after 2 attempts)" in error_lines(result)[0]
        time.sleep(2.6)  # let the server answer the abandoned requests before counting
        assert slow.count("/h.bin") == 2  # urllib3's Retry asked again


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


def _start(zoo, out, *args):
    return subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "-o", str(out),
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"never saw {what}")


def _interrupted(proc, sig=signal.SIGINT) -> str:
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("modelzoo-downloader: error: interrupted; temporary files removed")
    return stderr


def test_sigterm_cleans_up_like_ctrl_c(server, zoo, tmp_path):
    data = os.urandom(8 * MB)
    server.add("/slow.bin", data, Fault(chunk_size=64 * 1024, chunk_delay=0.1))
    write_model(zoo, "slow", [{"name": "slow.bin", "data": data, "url": server.url("/slow.bin")}])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "slow")
    _wait_for(lambda: any(p.stat().st_size > 0 for p in out.rglob("*.part")), "a partial file")
    _interrupted(proc, signal.SIGTERM)
    assert sorted(p.name for p in out.rglob("*")) == ["public", "slow"]  # the model folder, empty


def test_ctrl_c_while_unpacking_leaves_only_verified_files(server, zoo, tmp_path):
    # 1.5 GB of zeros compress to 1.5 MB: unpacking takes long enough to be interrupted
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("first.txt", "small")
        with zf.open("big.bin", "w", force_zip64=True) as member:
            zero = bytes(MB)
            for _ in range(1500):
                member.write(zero)
    archive = buf.getvalue()
    _archive_model(server, zoo, "big", archive, "zip", "big.zip")
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "big")
    _wait_for(lambda: any(".unpack-" in p.name for p in (out / "public/big").glob(".*"))
              if (out / "public/big").exists() else False, "the staging folder")
    _interrupted(proc)
    model = out / "public/big"
    assert sorted(p.name for p in model.iterdir()) == ["big.zip"]  # as before unpacking: the verified archive
    assert (model / "big.zip").read_bytes() == archive


def test_ctrl_c_while_receiving_a_compressed_body_leaves_nothing(server, zoo, tmp_path):
    data = os.urandom(6 * MB)
    server.add("/z.bin", data, Fault(gzip=True, chunk_size=64 * 1024, chunk_delay=0.05))
    write_model(zoo, "z", [{"name": "z.bin", "data": data, "url": server.url("/z.bin")}])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "z")
    _wait_for(lambda: any(p.name.endswith(".raw") and p.stat().st_size > 0 for p in out.rglob(".*")),
              "the raw candidate file")
    _interrupted(proc)
    assert [p.name for p in (out / "public/z").iterdir()] == []


def test_ctrl_c_during_regex_replace_leaves_the_file_whole(server, zoo, tmp_path):
    text = b"threshold = 0.5\n" * 4_000_000  # 64 MB of text: the replacement takes a while
    server.add("/c.txt", text)
    write_model(zoo, "c", [{"name": "c.txt", "data": text, "url": server.url("/c.txt")}],
                postprocessing=[{"$type": "regex_replace", "file": "c.txt", "pattern": "0\\.5", "replacement": "1"}])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--name", "c", "--progress_format", "json")
    _wait_for(lambda: (out / "public/c/c.txt").exists(), "the downloaded file")
    _interrupted(proc)
    assert [p.name for p in (out / "public/c").iterdir()] == ["c.txt"]
    # the edit is whole or not at all (it may finish within the grace period)
    assert (out / "public/c/c.txt").read_bytes() in (text, text.replace(b"0.5", b"1"))


def test_failure_halfway_through_moving_unpacked_files_puts_everything_back(server, zoo, tmp_path, tmpfs):
    """The archive has a/ and b/; b already exists in the model folder as a mount point, which
    cannot be renamed (EBUSY): a/ was already moved in and must be put back as it was."""
    archive = _zip([("a/new.txt", FILE, b"new a"), ("b/new.txt", FILE, b"new b")])
    server.add("/two.zip", archive)
    write_model(zoo, "two", [{"name": "two.zip", "data": archive, "url": server.url("/two.zip")}],
                postprocessing=[{"$type": "unpack_archive", "file": "two.zip", "format": "zip"}])
    out = tmp_path / "out"
    model = out / "public/two"
    (model / "a").mkdir(parents=True)
    (model / "a/old.txt").write_bytes(b"old a")
    mount_point = tmpfs("1m")
    model_b = model / "b"
    model_b.mkdir()
    subprocess.run(["mount", "--bind", str(mount_point), str(model_b)], check=True)
    try:
        result = download(zoo, out, "--name", "two")
        assert result.returncode == 1
        assert f"cannot move into place {model_b}: Device or resource busy" in error_lines(result)[0]
        assert sorted(p.name for p in model.iterdir()) == ["a", "b", "two.zip"]
        assert [p.name for p in (model / "a").iterdir()] == ["old.txt"]  # the old a/, untouched
        assert leftovers(out) == []
    finally:
        subprocess.run(["umount", str(model_b)], check=False)


def test_cache_on_a_full_disk_is_one_line_with_an_end_event(server, zoo, one_file, tmp_path, tmpfs):
    data, out, target = one_file
    cache = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--cache_dir", cache, "--progress_format", "json")
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
    result = download(zoo, out, "--name", "m", "--cache_dir", cache)
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


# ----------------------------------------------------------------------------- several connections (issue 11)

BIG = 24 * 1000 * 1000  # above the 16 MB from which a file is fetched in pieces


@pytest.fixture
def big_file(server, zoo, tmp_path):
    data = os.urandom(BIG)
    url = server.add("/big.bin", data)
    write_model(zoo, "big", [{"name": "big.bin", "data": data, "url": url}])
    return data, tmp_path / "out", tmp_path / "out/public/big/big.bin"


def _ranges(server) -> list[tuple[int, int] | None]:
    out = []
    for r in server.requests:
        value = r.headers.get("Range")
        if value is None:
            out.append(None)
            continue
        a, _, b = value.removeprefix("bytes=").partition("-")
        out.append((int(a), int(b) if b else -1))
    return out


SLOW = Fault(chunk_size=256 * 1024, chunk_delay=0.02)  # ~12 MB/s: slow enough for pieces to pay


def _per_request(server, choose) -> None:
    """Serve each request with the fault `choose(range_header, nth_closed_range)` returns (None:
    the path's own fault, if any)."""
    original = server._record
    closed = [0]

    def record(method, path, headers, target_):
        served = original(method, path, headers, target_)
        value = headers.get("Range", "")
        nth = None
        if value and not value.endswith("-"):
            nth = closed[0]
            closed[0] += 1
        return choose(value, nth) or served

    server._record = record


def _pieces(server) -> list[tuple[int, int]]:
    return sorted(r for r in _ranges(server) if r is not None and r[1] != -1)


def test_a_slow_big_file_goes_on_in_pieces_over_several_connections(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and leftovers(out) == []
    first, *_ = _ranges(server)
    assert first == (0, -1)  # one connection first, asking for a range: the answer shows pieces would work
    pieces = _pieces(server)
    assert 0 < pieces[0][0] < BIG // 2 and pieces[-1][1] == BIG - 1  # the rest, after what the first one got
    assert all(b[0] == a[1] + 1 for a, b in zip(pieces, pieces[1:]))  # consecutive, no gap or overlap
    assert len(pieces) >= 8 and 2 <= server.peak_concurrency() <= 4


def test_a_fast_link_keeps_one_connection(server, zoo, big_file):
    """More connections join only when the first one is slow: at loopback speed the file is
    done before they could help, so it is one plain request."""
    data, out, target = big_file
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server) == [(0, -1)] and server.max_active == 1


def test_one_connection_when_asked(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--connections", "1")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data and _ranges(server) == [None]


def test_small_files_are_not_split(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", SLOW)
    assert download(zoo, out, "--name", "m", "--connections", "8").returncode == 0
    assert _ranges(server) == [None]


def test_a_server_ignoring_range_is_read_on_one_connection(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(ignore_range=True, chunk_size=256 * 1024, chunk_delay=0.02))
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server) == [(0, -1)] and server.max_active == 1  # a 200 to a range: no pieces


def test_an_inconsistent_content_range_falls_back_to_one_connection_from_zero(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    _per_request(server, lambda value, nth: Fault(content_range=f"bytes 1-{BIG - 1}/{BIG}") if nth else None)
    result = download(zoo, out, "--name", "big", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    _assert_fell_back_from_zero(server)


def _assert_fell_back_from_zero(server) -> None:
    """After the pieces, one request for the whole file: from byte 0, not a resume of the prefix."""
    ranges = _ranges(server)
    first_piece = next(i for i, r in enumerate(ranges) if r is not None and r[1] != -1)
    after = [r for r in ranges[first_piece:] if r is None or r[1] == -1]  # one-connection requests
    assert after and (after[0] is None or after[0][0] == 0), ranges


@pytest.mark.parametrize("fault", [Fault(content_encoding="gzip"), Fault(pad=b"x" * 100)],
                         ids=["compressed-piece", "longer-piece"])
def test_a_piece_that_is_not_the_range_asked_falls_back(server, zoo, big_file, fault):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    _per_request(server, lambda value, nth: fault if nth is not None and nth >= 1 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    _assert_fell_back_from_zero(server)


def test_pieces_ahead_of_a_slow_first_piece_are_bounded(server, zoo, big_file):
    """Memory: at most connections + 1 pieces are fetched while the first is still arriving."""
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    first_piece_slow = Fault(chunk_size=64 * 1024, chunk_delay=0.15)  # 1.5 MB: about 3.5 s
    _per_request(server, lambda value, nth: first_piece_slow if nth == 0 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    pieces = [r for r in server.requests if r.headers.get("Range", "-")[-1] != "-"]
    early = [r for r in pieces if r.time - pieces[0].time < 2.5]  # while the slow piece still arrives
    # The slow piece is the first request to arrive, which may be any of the three that start at
    # once; the pieces before it are written, and then nothing may be fetched beyond the window
    # (connections + 1 = 4 pieces from the slow one). Without the bound all 16 are asked at once.
    starts = sorted(int(r.headers["Range"].split("=")[1].split("-")[0]) for r in pieces)
    slow = starts.index(int(pieces[0].headers["Range"].split("=")[1].split("-")[0]))
    assert slow < 3 and 2 <= len(early) <= slow + 4, (slow, len(early))


def test_a_dropped_piece_resumes_by_itself(server, zoo, big_file):
    data, out, target = big_file
    server.fault("/big.bin", Fault(times=1, chunk_size=256 * 1024, chunk_delay=0.02))  # a slow start
    _per_request(server, lambda value, nth: Fault(drop_after=500_000, stall_seconds=0.3, reset=True)
                 if nth == 0 else None)
    result = download(zoo, out, "--name", "big", "--connections", "3")  # --num_attempts is 1
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    pieces = [r for r in _ranges(server) if r is not None and r[1] != -1]
    first, rest = pieces[0], pieces[1:]
    resumed = [r for r in rest if r[1] == first[1]]  # the same piece asked again, from where it broke
    assert len(resumed) == 1 and first[0] < resumed[0][0] <= first[0] + 500_000


def test_jobs_and_pieces_share_the_connections(server, zoo, tmp_path):
    for i in range(2):
        data = os.urandom(BIG)
        server.add(f"/b{i}.bin", data, Fault(chunk_size=256 * 1024, chunk_delay=0.01))
        write_model(zoo, f"b{i}", [{"name": f"b{i}.bin", "data": data, "url": server.url(f"/b{i}.bin")}])
    result = download(zoo, tmp_path / "out", "--all", "-j", "2", "--connections", "3")
    assert result.returncode == 0, result.stderr
    assert 2 <= server.peak_concurrency() <= 3  # max(jobs, connections), not jobs x connections


def test_ctrl_c_during_pieces_leaves_a_resumable_prefix(server, zoo, big_file, tmp_path):
    data, out, target = big_file
    server.fault("/big.bin", Fault(chunk_size=64 * 1024, chunk_delay=0.02))
    cache = tmp_path / "cache"
    proc = _start(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "4")
    _wait_for(lambda: any(p.stat().st_size > 2 * MB for p in cache.rglob("*.incomplete")), "2 MB in the cache")
    _interrupted(proc)
    partial = next(cache.rglob("*.incomplete"))
    kept = partial.stat().st_size
    assert data.startswith(partial.read_bytes())  # a plain prefix, no holes
    server.faults.clear()
    before = len(server.requests)
    result = download(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "1")
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [r.headers.get("Range") for r in server.requests[before:]] == [f"bytes={kept}-"]


def test_a_prefix_is_resumed_in_pieces(server, zoo, big_file, tmp_path):
    data, out, target = big_file
    cache = tmp_path / "cache"
    partial = cache / "sha384" / sha384(data)[:2] / (sha384(data)[2:] + ".incomplete")
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:5_000_000])
    server.fault("/big.bin", SLOW)
    result = download(zoo, out, "--name", "big", "--cache_dir", cache, "--connections", "4",
                      max_file_size=BIG)
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert _ranges(server)[0] == (5_000_000, -1)  # from the prefix on, not from zero
    pieces = _pieces(server)
    assert pieces[0][0] > 5_000_000 and pieces[-1][1] == BIG - 1


def test_a_local_disk_error_does_not_fall_through_to_the_source(server, zoo, one_file, tmpfs):
    data, _, _ = one_file
    server.add("/mirror/public/m/m.bin", data)
    out = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 1
    assert "no space left on device" in error_lines(result)[0]
    assert [r.path for r in server.requests] == ["/mirror/public/m/m.bin"]  # the source would not help


def test_a_run_waiting_for_another_says_so(server, zoo, one_file, tmp_path):
    from filelock import FileLock

    data, out, target = one_file
    cache = tmp_path / "cache"
    blob = cache / "sha384" / sha384(data)[:2] / sha384(data)[2:]
    blob.parent.mkdir(parents=True)
    lock = FileLock(str(blob) + ".lock")
    with lock:  # another process fetching the same file
        proc = _start(zoo, out, "--name", "m", "--cache_dir", cache)
        time.sleep(3)
        assert proc.poll() is None  # still waiting
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "waiting  public/m/m.bin: another process is fetching it into the cache" in stdout
    assert target.read_bytes() == data


def test_ten_redirects_are_followed_eleven_are_not(server, zoo, tmp_path):
    data = os.urandom(1000)
    server.add("/end.bin", data)
    for i in range(11):
        server.add(f"/r{i}", b"", Fault(redirect_to=f"/r{i + 1}" if i < 10 else "/end.bin"))
    write_model(zoo, "ten", [{"name": "t.bin", "data": data, "url": server.url("/r1")}])  # r1..r10: 10 hops
    write_model(zoo, "eleven", [{"name": "e.bin", "data": data, "url": server.url("/r0")}])  # 11 hops
    out = tmp_path / "out"
    assert download(zoo, out, "--name", "ten").returncode == 0
    assert (out / "public/ten/t.bin").read_bytes() == data
    result = download(zoo, out, "--name", "eleven")
    assert result.returncode == 1 and "redirect loop or more than 10 redirects" in error_lines(result)[0]


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
        f.write(b"X")
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


def test_a_second_signal_during_cleanup_does_not_leave_temporaries(server, zoo, tmp_path):
    for i in range(2):
        data = os.urandom(4 * MB)
        server.add(f"/s{i}.bin", data, Fault(stall_after=MB, stall_seconds=30))
        write_model(zoo, f"s{i}", [{"name": f"s{i}.bin", "data": data, "url": server.url(f"/s{i}.bin")}])
    out = tmp_path / "out"
    proc = _start(zoo, out, "--all", "-j", "2", "--timeout", "60")
    _wait_for(lambda: sum(p.stat().st_size > 0 for p in out.rglob("*.part")) == 2, "two partial files")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)  # inside the grace period
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert leftovers(out) == [], leftovers(out)


def test_two_runs_unpacking_into_the_same_folder_take_turns(server, zoo, tmp_path):
    archive = _zip([(f"d{i}/f.txt", FILE, os.urandom(200_000)) for i in range(30)])
    _archive_model(server, zoo, "z", archive, "zip", "z.zip")
    out = tmp_path / "out"
    for _ in range(3):
        procs = [_start(zoo, out, "--name", "z") for _ in range(3)]
        results = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], results
        model = out / "public/z"
        assert sorted(p.name for p in model.iterdir()) == [f"d{i}" for i in sorted(range(30), key=str)]
        assert leftovers(out) == [] and not any(".old" in p.name for p in out.rglob("*"))


def test_a_control_character_in_a_reason_phrase_does_not_reach_the_terminal(zoo, tmp_path):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def answer():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 404 Gone\x1b[2K\x1b[1Emodelzoo-downloader: all good\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    write_model(zoo, "x", [{"name": "x.bin", "data": b"x", "url": f"http://127.0.0.1:{port}/x.bin"}])
    result = download(zoo, tmp_path / "out", "--name", "x")
    listener.close()
    assert result.returncode == 1
    assert "\x1b" not in result.stderr and "HTTP 404 Gone[2K[1Emodelzoo-downloader: all good for" in result.stderr


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "0", "-1"])
def test_an_impossible_timeout_is_a_usage_error(zoo, tmp_path, value):
    write_model(zoo, "m", [{"name": "m.bin", "data": b"x", "url": "http://127.0.0.1:9/m.bin"}])
    result = download(zoo, tmp_path / "out", "--name", "m", "--timeout", value)
    assert result.returncode == 2 and "must be a positive number" in result.stderr


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
