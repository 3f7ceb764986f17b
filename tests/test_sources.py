"""Where a file comes from: mirrors tried before the source, and every way one source can fail
(a malformed redirect, a FIFO in a file:// mirror, a proxy that is down) falling through to the
next, with one line each for what failed. Downloader and mirror alike (obtain.py, fetch.py)."""

from __future__ import annotations

import os
import time

import pytest
from conftest import run_tool, write_model
from test_download import download, error_lines

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


def test_a_proxy_that_is_down_is_named(server, zoo, tmp_path):
    from modelzoo.devtools.servers import free_port

    write_model(zoo, "m", [{"name": "m.bin", "data": b"m", "url": "http://models.example.invalid/m.bin"}])
    down = f"http://127.0.0.1:{free_port()}"
    env = {"HTTP_PROXY": down, "http_proxy": down, "NO_PROXY": "", "no_proxy": ""}
    result = download(zoo, tmp_path / "out", "--name", "m", env=env)
    assert result.returncode == 1
    assert f"cannot connect to the proxy {down}: " in error_lines(result)[0]
