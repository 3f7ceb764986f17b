"""The downloader's pipeline through its real command line: files verified into place, what is
said on stdout and stderr (JSON events too), full and read-only disks, the exit codes.

The other topics have files of their own: test_transport.py (HTTP faults), test_sources.py
(mirrors, proxies), test_pieces.py (several connections), test_download_cache.py, test_archives.py,
test_interrupts.py. Every test checks the exit code, what was said on stderr, and the bytes at the
final path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import SCRIPTS, download, error_lines, leftovers, sha384, write_model

from test_archives import FILE, _archive_model, _zip

from modelzoo.devtools.loopback import Fault


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


def test_wrong_checksum(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(body=data[:-1] + bytes([data[-1] ^ 1])))
    result = download(zoo, out, "--name", "m", "--num_attempts", "3")
    assert result.returncode == 1
    first, _ = error_lines(result)
    assert f"SHA-384 mismatch: expected {sha384(data)}, got " in first
    assert not target.exists() and leftovers(out) == []
    assert server.count("/m.bin") == 1  # the same bytes again would not help


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


def test_full_disk(server, zoo, one_file, tmpfs):
    data, _, _ = one_file
    out = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--no_space_check")  # (the write itself meets the full disk)
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


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "0", "-1"])
def test_an_impossible_timeout_is_a_usage_error(zoo, tmp_path, value):
    write_model(zoo, "m", [{"name": "m.bin", "data": b"x", "url": "http://127.0.0.1:9/m.bin"}])
    result = download(zoo, tmp_path / "out", "--name", "m", "--timeout", value)
    assert result.returncode == 2 and "must be a positive number" in result.stderr
