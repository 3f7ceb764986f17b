"""--offline and MODELZOO_OFFLINE=1 (downloader, mirror, converter): no network connection at
all. Proven twice: the loopback server counts the TCP connections it accepts (none), and the
same runs in a network namespace without interfaces (`unshare -n`, as root) fail one line per
file on a cold cache and succeed from a warm cache or a file:// mirror."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import SCRIPTS, error_lines, run_tool, write_model

OFFLINE_WORDS = "not fetched: offline (--offline or MODELZOO_OFFLINE=1)"


@pytest.fixture
def two_files(server, zoo, tmp_path):
    """A model 'm' of two files served by the loopback server."""
    files = {"a.bin": os.urandom(300_000), "b.bin": os.urandom(200_000)}
    write_model(zoo, "m", [{"name": n, "data": d, "url": server.add(f"/{n}", d)} for n, d in files.items()])
    return files


def _download(zoo, out, *args, env=None):
    return run_tool("downloader", "--models_dir", zoo, "--name", "m", "-o", out, *args, env=env)


@pytest.mark.parametrize("how", [["--offline"], "env"])
def test_cold_cache_offline_connects_nowhere_and_says_each_file(server, zoo, two_files, tmp_path, how):
    args = how if isinstance(how, list) else []
    env = {"MODELZOO_OFFLINE": "1"} if how == "env" else None
    result = _download(zoo, tmp_path / "out", "--cache_dir", tmp_path / "cache", *args, env=env)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 3, result.stderr  # one line a file, then the summary
    for line, name in zip(lines, ["a.bin", "b.bin"]):
        assert line.startswith(f"modelzoo-downloader: error: m: public/m/{name}: {server.url('/' + name)}: ")
        assert OFFLINE_WORDS in line
    assert lines[2] == "modelzoo-downloader: failed: m"
    assert server.connections == 0 and server.count() == 0
    assert not list((tmp_path / "out").rglob("*.bin"))


def test_warm_cache_offline_succeeds_without_a_connection(server, zoo, two_files, tmp_path):
    cache = tmp_path / "cache"
    assert _download(zoo, tmp_path / "warm", "--cache_dir", cache).returncode == 0
    before = server.connections
    assert before > 0  # (the counter counts)
    result = _download(zoo, tmp_path / "out", "--cache_dir", cache, "--offline")
    assert result.returncode == 0, result.stderr
    assert server.connections == before
    for name, data in two_files.items():
        assert (tmp_path / "out/public/m" / name).read_bytes() == data


def test_file_mirror_offline_falls_through_to_it(server, zoo, two_files, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "public/m").mkdir(parents=True)
    (mirror / "public/m/a.bin").write_bytes(two_files["a.bin"])  # b.bin is not there
    result = _download(zoo, tmp_path / "out", "--offline", "--mirror", f"file://{mirror}", "--mirror",
                       server.base_url)
    assert result.returncode == 1
    first, summary = error_lines(result)
    assert first.startswith("modelzoo-downloader: error: m: public/m/b.bin: ")
    assert f"HTTP 404 Not Found (file mirror) for file://{mirror}/public/m/b.bin" in first
    assert OFFLINE_WORDS in first
    assert (tmp_path / "out/public/m/a.bin").read_bytes() == two_files["a.bin"]
    assert server.connections == 0


def test_mirror_sync_offline(server, zoo, two_files, tmp_path):
    cold = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "dest", "--offline",
                    "--cache_dir", tmp_path / "cache")
    assert cold.returncode == 1
    lines = error_lines(cold)
    assert len(lines) == 3 and all(OFFLINE_WORDS in line for line in lines[:2]), cold.stderr
    assert server.connections == 0
    warm = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "warm",
                    "--cache_dir", tmp_path / "cache")
    assert warm.returncode == 0, warm.stderr
    before = server.connections
    again = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "dest", "--offline",
                     "--cache_dir", tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert server.connections == before
    assert (tmp_path / "dest/public/m/b.bin").read_bytes() == two_files["b.bin"]


def test_offline_refuses_an_s3_destination_in_one_line(zoo, two_files, tmp_path):
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", "s3://bucket/omz", "--offline",
                      env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and OFFLINE_WORDS in lines[0], result.stderr


@pytest.mark.parametrize("tool", ["downloader", "converter", "mirror"])
def test_a_bad_offline_variable_is_one_line(zoo, two_files, tmp_path, tool):
    args = ["sync", "--to", tmp_path / "dest"] if tool == "mirror" else ["-o", tmp_path / "out"]
    result = run_tool(tool, *args, "--models_dir", zoo, "--all", env={"MODELZOO_OFFLINE": "maybe"})
    assert result.returncode == 2
    assert error_lines(result) == [f"modelzoo-{tool}: error: MODELZOO_OFFLINE='maybe': expected 1 (offline) or 0"]


# ----------------------------------------------------------------------------- a namespace without a network

def _in_netns(tool: str, *args) -> subprocess.CompletedProcess:
    """The tool in a new network namespace: no interface is up, not even loopback."""
    return subprocess.run(["unshare", "-n", sys.executable, str(SCRIPTS / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_in_a_namespace_without_network(server, zoo, two_files, tmp_path):
    assert os.geteuid() == 0, "unshare -n needs root (CI runs as root; so must these tests)"
    probe = _in_netns("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "probe")
    assert probe.returncode == 1 and "Network is unreachable" in probe.stderr  # (no network indeed)
    cache = tmp_path / "cache"
    cold = _in_netns("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "cold", "--offline",
                     "--cache_dir", cache)
    assert cold.returncode == 1
    lines = error_lines(cold)
    assert len(lines) == 3 and all(OFFLINE_WORDS in line for line in lines[:2]), cold.stderr
    assert "unreachable" not in cold.stderr  # refused before any attempt, not failed by the kernel
    assert _download(zoo, tmp_path / "warm", "--cache_dir", cache).returncode == 0  # (outside: warms the cache)
    warm = _in_netns("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "out", "--offline",
                     "--cache_dir", cache)
    assert warm.returncode == 0, warm.stderr
    assert (tmp_path / "out/public/m/b.bin").read_bytes() == two_files["b.bin"]
    sync = _in_netns("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "dest",
                     "--mirror", f"file://{tmp_path / 'out'}", "--offline")
    assert sync.returncode == 0, sync.stderr
    assert (tmp_path / "dest/public/m/a.bin").read_bytes() == two_files["a.bin"]
    fetched = _in_netns("downloader", "--models_dir", zoo, "--name", "m", "-o", tmp_path / "viamirror",
                        "--mirror", f"file://{tmp_path / 'dest'}", "--offline")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "viamirror/public/m/a.bin").read_bytes() == two_files["a.bin"]


def test_converter_offline_in_a_namespace_without_network(zoo, tmp_path):
    """A real conversion (two models in -j 2 worker processes, which inherit offline mode)."""
    from test_convert import tiny_tf_model

    dl = tmp_path / "dl"
    for i in range(2):
        pb = dl / "public" / f"tiny{i}" / "tiny.pb"
        tiny_tf_model(pb, i)
        write_model(zoo, f"tiny{i}", [{"name": "tiny.pb", "data": pb.read_bytes(), "url": "http://127.0.0.1:9/t.pb"}],
                    framework="tf", model_optimizer_args=["--input_model=$dl_dir/tiny.pb", "--output=y"],
                    input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    result = _in_netns("converter", "--models_dir", zoo, "--all", "-d", dl, "-o", tmp_path / "ir", "-j", "2",
                       "--offline")
    assert result.returncode == 0, result.stderr
    for i in range(2):
        assert (tmp_path / f"ir/public/tiny{i}/FP16/tiny{i}.bin").stat().st_size > 0
