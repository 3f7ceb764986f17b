"""One source misbehaving, through the downloader's command line against the loopback server:
dropped and stalled bodies resumed with Range, retries and back-off, status codes, redirects,
encodings on the wire, wrong ranges, timeouts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import MB, download, error_lines, leftovers, sha384, write_model

from modelzoo.devtools.loopback import Fault


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


def test_connection_refused_is_retried_by_urllib3_then_reported(zoo, tmp_path, refused_port):
    port = refused_port
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


def test_unsupported_encoding_from_the_source_is_one_line(server, zoo, one_file):
    data, out, target = one_file
    server.fault("/m.bin", Fault(content_encoding="br"))
    result = download(zoo, out, "--name", "m")
    assert result.returncode == 1
    assert "unsupported Content-Encoding 'br'" in error_lines(result)[0]
    assert not target.exists() and leftovers(out) == []


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
