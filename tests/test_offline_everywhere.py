"""Offline mode across every command and every kind of mirror: with --offline (or
MODELZOO_OFFLINE=1), no command opens a connection to an http://, https:// or s3:// mirror or
source, whatever reads it (a file's fetch, an IR mirror's manifest, --print_ir). A listener on
127.0.0.1 counts the TCP connections it accepts: every run below must leave it at 0, and every
network mirror is said to be refused, in one line, while file:// mirrors work as always.
(The quantizer's --mirror: tests/quantize/test_offline_mirrors.py.)"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest
from conftest import error_lines, run_tool, write_model
from ovc_reference import tiny_pb

OFFLINE_WORDS = "not fetched: offline"
ARGS = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]
INFO = [{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}]


class Listener:
    """Accepts TCP connections on 127.0.0.1 and counts them (then closes each): any scheme's
    client that tries this port is seen, TLS and S3 alike."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def mirrors(listener: Listener) -> dict[str, tuple[str, dict[str, str]]]:
    """One network mirror of each scheme, all pointing at the listener (S3 through its endpoint)."""
    port = listener.port
    return {
        "http": (f"http://127.0.0.1:{port}/zoo", {}),
        "https": (f"https://127.0.0.1:{port}/zoo", {}),
        "s3": ("s3://bucket/zoo", {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "k",
                                   "AWS_SECRET_ACCESS_KEY": "s", "AWS_DEFAULT_REGION": "us-east-1"}),
    }


def test_the_listener_counts(listener):
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
        pass
    for _ in range(100):
        if listener.accepted:
            break
        threading.Event().wait(0.02)
    assert listener.accepted == 1


@pytest.mark.parametrize("scheme", ["http", "https", "s3"])
def test_downloader_and_mirror_sync(listener, zoo, tmp_path, scheme):
    url, env = mirrors(listener)[scheme]
    data = os.urandom(1000)
    write_model(zoo, "m", [{"name": "a.bin", "data": data, "url": f"http://127.0.0.1:{listener.port}/a.bin"}])
    env = {**env, "MODELZOO_OFFLINE": "1"}
    down = run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "out", "--mirror", url, env=env)
    assert down.returncode == 1
    assert all(OFFLINE_WORDS in line for line in error_lines(down)[:-1]), down.stderr
    sync = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "dest", "--mirror", url,
                    env=env)
    assert sync.returncode == 1 and OFFLINE_WORDS in sync.stderr, sync.stderr
    assert listener.accepted == 0


def _tiny_zoo(zoo: Path, tmp_path: Path, port: int) -> Path:
    data = tiny_pb(0).read_bytes()
    write_model(zoo, "tiny-a", [{"name": "tiny.pb", "data": data, "url": f"http://127.0.0.1:{port}/tiny.pb"}],
                framework="tf", model_optimizer_args=ARGS, input_info=INFO)
    dl = tmp_path / "dl"
    (dl / "public/tiny-a").mkdir(parents=True)
    (dl / "public/tiny-a/tiny.pb").write_bytes(data)
    return dl


@pytest.mark.parametrize("scheme", ["http", "https", "s3"])
def test_converter_mirror_and_print_ir(listener, zoo, tmp_path, scheme):
    url, env = mirrors(listener)[scheme]
    dl = _tiny_zoo(zoo, tmp_path, listener.port)
    result = run_tool("converter", "--models_dir", zoo, "--name", "tiny-a", "-d", dl, "-o", tmp_path / "ir",
                      "--backend", "ovc", "--mirror", url, "--offline", env=env, timeout=600)
    assert result.returncode == 0, result.stderr  # made here instead
    [line] = error_lines(result)
    assert url in line and OFFLINE_WORDS in line and line.endswith("converting locally"), line
    assert (tmp_path / "ir/public/tiny-a/FP32/tiny-a.xml").is_file()
    info = run_tool("info_dumper", "--print_ir", url, env={**env, "MODELZOO_OFFLINE": "1"})
    assert info.returncode != 0 and OFFLINE_WORDS in info.stderr, info.stderr
    assert listener.accepted == 0


def test_a_file_mirror_still_works_offline(listener, zoo, tmp_path):
    dl = _tiny_zoo(zoo, tmp_path, listener.port)
    dest = tmp_path / "mirror"
    sync = run_tool("mirror", "sync", "--models_dir", zoo, "--name", "tiny-a", "--to", dest, "--cache_dir",
                    tmp_path / "cache", "--ir", "FP16,FP32", "--backend", "ovc", "--mirror", dl.as_uri(),
                    "--offline", timeout=600)
    assert sync.returncode == 0, sync.stderr
    conv = run_tool("converter", "--models_dir", zoo, "--name", "tiny-a", "-d", dl, "-o", tmp_path / "ir",
                    "--backend", "ovc", "--mirror", dest.as_uri(), "--offline", timeout=600)
    assert conv.returncode == 0 and "fetched from the mirror" in conv.stdout, conv.stderr
    info = run_tool("info_dumper", "--print_ir", dest.as_uri(), env={"MODELZOO_OFFLINE": "1"})
    assert info.returncode == 0 and "tiny-a" in info.stdout, info.stderr
    assert listener.accepted == 0
