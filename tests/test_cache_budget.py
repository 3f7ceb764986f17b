"""--cache_max_size (downloader, mirror sync): after the run the cache holds at most SIZE, least
recently used entries going first, never a file this run's models name; bad sizes are one line."""

from __future__ import annotations

import os
import time

import pytest
from conftest import MB, error_lines, run_tool, sha384, write_model


def _blobs(cache) -> set[str]:
    store = cache / "sha384"
    return {p.parent.name + p.name for p in store.glob("*/*") if "." not in p.name}


def _cache_bytes(cache) -> int:
    return sum(p.stat().st_size for p in (cache / "sha384").glob("*/*") if "." not in p.name)


@pytest.fixture
def four_models(server, zoo):
    """Models old1, old2, old3, new: one 1 MiB file each."""
    data = {}
    for name in ("old1", "old2", "old3", "new"):
        data[name] = os.urandom(MB)
        url = server.add(f"/{name}.bin", data[name])
        write_model(zoo, name, [{"name": f"{name}.bin", "data": data[name], "url": url}])
    return data


def _used(cache, data: bytes, seconds_ago: float) -> None:
    """Say when a blob was last used (its .ok record's mtime, as cache.py records it)."""
    sha = sha384(data)
    t = time.time() - seconds_ago
    os.utime(cache / "sha384" / sha[:2] / (sha[2:] + ".ok"), (t, t))


def _fill(zoo, cache, tmp_path, data):
    for name in ("old1", "old2", "old3"):
        result = run_tool("downloader", "--models_dir", zoo, "--name", name, "-o", tmp_path / "warm",
                          "--cache_dir", cache)
        assert result.returncode == 0, result.stderr
    _used(cache, data["old1"], 3 * 86400)  # least recently used
    _used(cache, data["old3"], 2 * 86400)
    _used(cache, data["old2"], 1 * 86400)


@pytest.mark.parametrize("tool", ["downloader", "mirror"])
def test_budget_removes_least_recently_used_and_keeps_this_runs_files(zoo, four_models, tmp_path, tool):
    cache = tmp_path / "cache"
    _fill(zoo, cache, tmp_path, four_models)
    budget = int(2.5 * MB)
    args = (["-o", tmp_path / "out"] if tool == "downloader" else ["sync", "--to", tmp_path / "dest"])
    result = run_tool(tool, *args, "--models_dir", zoo, "--name", "new", "--cache_dir", cache,
                      "--cache_max_size", str(budget))
    assert result.returncode == 0, result.stderr
    assert _blobs(cache) == {sha384(four_models["new"]), sha384(four_models["old2"])}  # old1, then old3 went
    assert _cache_bytes(cache) <= budget
    assert ("2 least recently used entries removed (0 B freed, 2.1 MB more stay in output folders that link to "
            "them); it holds 2.1 MB (--cache_max_size 2.6 MB)") in result.stdout, result.stdout
    assert (tmp_path / "warm/public/old1/old1.bin").read_bytes() == four_models["old1"]  # its hard link keeps it


def test_a_budget_below_this_runs_files_keeps_them_and_says_so(zoo, four_models, tmp_path):
    cache = tmp_path / "cache"
    _fill(zoo, cache, tmp_path, four_models)
    result = run_tool("downloader", "--models_dir", zoo, "--name", "old1,new", "-o", tmp_path / "out",
                      "--cache_dir", cache, "--cache_max_size", "1M")
    assert result.returncode == 0
    assert _blobs(cache) == {sha384(four_models["new"]), sha384(four_models["old1"])}
    assert error_lines(result) == ["modelzoo-downloader: warning: --cache_max_size 1.0 MB: the cache still holds "
                                   "2.1 MB: files this run's models name are never removed"]


@pytest.mark.parametrize("value, message", [
    ("10XB", "'10XB' is not a size (bytes, or a number with K, M, G, T, KiB, MiB, GiB or TiB)"),
    ("-5G", "a size cannot be negative (got '-5G')"),
    ("-1", "a size cannot be negative (got '-1')"),
])
@pytest.mark.parametrize("tool", ["downloader", "mirror"])
def test_bad_sizes_are_one_line(zoo, four_models, tmp_path, tool, value, message):
    args = ["-o", tmp_path / "out"] if tool == "downloader" else ["sync", "--to", tmp_path / "dest"]
    result = run_tool(tool, *args, "--models_dir", zoo, "--all", "--cache_dir", tmp_path / "cache",
                      f"--cache_max_size={value}")
    assert result.returncode == 2
    prog = "modelzoo-downloader" if tool == "downloader" else "modelzoo-mirror sync"
    assert error_lines(result) == [f"{prog}: error: argument --cache_max_size: {message}"]
    assert not (tmp_path / "cache").exists()


def test_a_budget_without_a_cache_is_one_line(zoo, four_models, tmp_path):
    result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", tmp_path / "out", "--cache_max_size", "1G")
    assert result.returncode == 2
    assert error_lines(result) == ["modelzoo-downloader: error: --cache_max_size needs --cache_dir (the downloader "
                                   "has no cache without it)"]
    assert not (tmp_path / "out").exists()
