"""Where a file comes from: mirrors tried before the source, and every way one source can fail
(a malformed redirect, a FIFO in a file:// mirror, a proxy that is down) falling through to the
next, with one line each for what failed. Downloader and mirror alike (obtain.py, fetch.py)."""

from __future__ import annotations

import os
import time

import pytest
from conftest import MB, download, error_lines, run_tool, write_model

from modelzoo.devtools.loopback import Fault

BAD_LOCATIONS = {"ipv6": "http://[::1", "not utf-8": "http://127.0.0.1:9/x\xff\xfe"}


@pytest.fixture
def good_and_mirror(server, zoo, tmp_path):
    """Model 'm' (one file served at /m.bin) and a mirror at /mirror/ that redirects badly."""
    data = os.urandom(10_000)
    write_model(zoo, "m", [{"name": "m.bin", "data": data, "url": server.add("/m.bin", data)}])
    return data, server.url("mirror")


@pytest.mark.parametrize("location", list(BAD_LOCATIONS))
def test_a_malformed_redirect_from_a_mirror_falls_through_to_the_source(server, zoo, tmp_path, good_and_mirror,
                                                                       location):
    data, mirror = good_and_mirror
    server.add("/mirror/public/m/m.bin", b"", Fault(redirect_to=BAD_LOCATIONS[location]))
    out = tmp_path / "out"
    result = download(zoo, out, "--name", "m", "--mirror", mirror)
    assert result.returncode == 0, result.stderr
    assert (out / "public/m/m.bin").read_bytes() == data
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--to", tmp_path / "dest", "--all", "--mirror", mirror)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dest/public/m/m.bin").read_bytes() == data


def test_when_every_source_fails_each_failed_file_has_its_line(server, zoo, tmp_path):
    write_model(zoo, "m", [{"name": "m.bin", "data": b"m" * 100,
                            "url": server.add("/m.bin", b"", Fault(redirect_to="http://[::1"))}])
    result = download(zoo, tmp_path / "out", "--name", "m")
    assert result.returncode == 1
    lines = error_lines(result)
    assert lines[0].startswith("modelzoo-downloader: error: m: ") and "Invalid IPv6 URL" in lines[0]
    assert "unexpected" not in lines[0] and lines[-1] == "modelzoo-downloader: failed: m"
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--to", tmp_path / "dest", "--all")
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 2 and "public/m/m.bin" in lines[0] and "Invalid IPv6 URL" in lines[0]
    assert lines[1] == "modelzoo-mirror: failed: m"


def test_a_fifo_in_a_file_mirror_is_not_there(server, zoo, tmp_path, good_and_mirror):
    data, _ = good_and_mirror
    mirror = tmp_path / "mirror"
    (mirror / "public/m").mkdir(parents=True)
    os.mkfifo(mirror / "public/m/m.bin")
    out = tmp_path / "out"
    t0 = time.monotonic()
    result = download(zoo, out, "--name", "m", "--mirror", mirror.as_uri(), "--timeout", "30", timeout=60)
    assert result.returncode == 0, result.stderr
    assert (out / "public/m/m.bin").read_bytes() == data
    assert time.monotonic() - t0 < 30  # not a timeout: a FIFO is not a file the mirror has


def test_a_proxy_that_is_down_is_named(server, zoo, tmp_path, refused_port):
    write_model(zoo, "m", [{"name": "m.bin", "data": b"m", "url": "http://models.example.invalid/m.bin"}])
    down = f"http://127.0.0.1:{refused_port}"
    env = {"HTTP_PROXY": down, "http_proxy": down, "NO_PROXY": "", "no_proxy": ""}
    result = download(zoo, tmp_path / "out", "--name", "m", env=env)
    assert result.returncode == 1
    assert f"cannot connect to the proxy {down}: " in error_lines(result)[0]


# ----------------------------------------------------------------------------- mirrors, a proxy


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


def test_a_prefix_from_a_mirror_is_not_continued_from_the_source(server, zoo, one_file):
    data, out, target = one_file
    server.add("/mirror/public/m/m.bin", data, Fault(drop_after=MB))
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes() == data
    assert [(r.path, r.headers.get("Range")) for r in server.requests] == \
        [("/mirror/public/m/m.bin", None), ("/m.bin", None)]


def test_a_local_disk_error_does_not_fall_through_to_the_source(server, zoo, one_file, tmpfs):
    data, _, _ = one_file
    server.add("/mirror/public/m/m.bin", data)
    out = tmpfs("1m")
    result = download(zoo, out, "--name", "m", "--mirror", server.url("/mirror"),
                      "--no_space_check")  # (the write itself meets the full disk)
    assert result.returncode == 1
    assert "no space left on device" in error_lines(result)[0]
    assert [r.path for r in server.requests] == ["/mirror/public/m/m.bin"]  # the source would not help
