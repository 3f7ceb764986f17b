"""modelzoo-cache (ls, verify, prune, rm) on caches filled by real downloads from a loopback server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SCRIPTS, _wait_for, one_error_line, run_tool, sha384, write_model

from modelzoo.devtools.loopback import Fault
from modelzoo.events import human_size

KB = 1000
DAY = 86400


def download(zoo, out, cache, *args, **kw):
    result = run_tool("downloader", "--models_dir", zoo, "-o", out, "--cache_dir", cache, *args, **kw)
    assert result.returncode == 0, result.stderr
    return result


def cache_tool(*args, **kw) -> subprocess.CompletedProcess:
    return run_tool("cache", *args, **kw)


def as_json(*args) -> dict:
    result = cache_tool(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def blob(cache: Path, data: bytes) -> Path:
    sha = sha384(data)
    return cache / "sha384" / sha[:2] / sha[2:]


def record(cache: Path, data: bytes) -> Path:
    return blob(cache, data).with_suffix(".ok")


@pytest.fixture
def filled(server, zoo, tmp_path):
    """Models a (two files), b (a's first file and one of its own) and c (one file), all
    downloaded through the cache; returns (cache, files by name)."""
    files = {name: os.urandom(size) for name, size in (("a1", 300 * KB), ("a2", 200 * KB), ("b1", 100 * KB),
                                                        ("c1", 50 * KB))}
    urls = {name: server.add(f"/{name}.bin", data) for name, data in files.items()}

    def entry(name):
        return {"name": f"{name}.bin", "data": files[name], "url": urls[name]}

    write_model(zoo, "a", [entry("a1"), entry("a2")])
    write_model(zoo, "b", [entry("a1") | {"name": "shared.bin"}, entry("b1")])
    write_model(zoo, "c", [entry("c1")])
    cache = tmp_path / "cache"
    download(zoo, tmp_path / "out", cache, "--all")
    return cache, files


def test_ls_per_model_unreferenced_partials_and_totals(server, zoo, filled, tmp_path):
    cache, files = filled
    # a partial download: the server breaks off, the cache keeps the prefix for resuming
    partial_data = os.urandom(400 * KB)
    server.add("/p.bin", partial_data, Fault(drop_after=150 * KB))
    write_model(zoo, "p", [{"name": "p.bin", "data": partial_data, "url": server.url("/p.bin")}])
    result = run_tool("downloader", "--models_dir", zoo, "-o", tmp_path / "out", "--cache_dir", cache, "--name", "p")
    assert result.returncode == 1
    # c's descriptor goes away: its blob is now unreferenced
    (zoo / "public" / "c" / "model.yml").unlink()
    (zoo / "public" / "c").rmdir()

    doc = as_json("ls", "--cache_dir", cache, "--models_dir", zoo)
    models = {m["name"]: m for m in doc["models"]}
    assert set(models) == {"a", "b"}  # p has only a partial
    assert models["a"] | {"last_used": None} == {"name": "a", "files": 2, "cached_files": 2, "bytes": 500 * KB,
                                                   "shared_bytes": 300 * KB, "last_used": None}
    assert models["b"]["bytes"] == 400 * KB and models["b"]["shared_bytes"] == 300 * KB
    # last used: the latest use of a's files, i.e. their blobs' stat records' mtime (docs/architecture.md)
    latest = max(blob(cache, files[n]).with_suffix(".ok").stat().st_mtime for n in ("a1", "a2"))
    assert models["a"]["last_used"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(latest))
    assert [(u["sha384"], u["bytes"]) for u in doc["unreferenced"]] == [(sha384(files["c1"]), 50 * KB)]
    assert [(p["sha384"], p["kind"]) for p in doc["partials"]] == [(sha384(partial_data), "partial")]
    partial_size = doc["partials"][0]["bytes"]
    assert 0 < partial_size < 400 * KB
    assert doc["totals"] == {"blobs": 4, "blob_bytes": 650 * KB, "partials": 1, "partial_bytes": partial_size,
                             "bytes": 650 * KB + partial_size, "conversions": 0, "conversion_bytes": 0,
                             "broken_conversions": 0}
    assert doc["conversions"] is None  # (no IR cache: no ir/ folder is made by listing)
    assert not (cache / "ir").exists()

    text = cache_tool("ls", "--cache_dir", cache, "--models_dir", zoo)
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "FILES", "SIZE", "SHARED", "LAST", "USED"]
    assert re.fullmatch(r"a +2/2 +500\.0 KB +300\.0 KB +\d{4}-\d\d-\d\d \d\d:\d\d", lines[1]), lines[1]
    assert lines[1].endswith("  " + time.strftime("%Y-%m-%d %H:%M", time.localtime(latest)))  # local time, to the minute
    assert "unreferenced  1 blobs, 50.0 KB" in text.stdout
    assert f"total         4 blobs and 1 partials, {human_size(650 * KB + partial_size)} in {cache}" in text.stdout


def test_verify_finds_corrupt_and_stray_files_and_repair_removes_them(server, zoo, filled, tmp_path):
    cache, files = filled
    clean = cache_tool("verify", "--cache_dir", cache)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert re.fullmatch(rf"verify {re.escape(str(cache))}: 4 blobs \(650\.0 KB\) in \d+\.\d\d s; clean",
                        clean.stdout.strip()), clean.stdout
    bad = blob(cache, files["b1"])
    with open(bad, "r+b") as f:  # (as root: the blob is read-only) same size, one byte changed
        f.write(bytes([files["b1"][0] ^ 1]))  # always differs (a fixed byte matches 1 in 256)
    stray = bad.parent / "left-by-hand.bin"
    stray.write_bytes(b"x")
    result = cache_tool("verify", "--cache_dir", cache)
    assert result.returncode == 1
    assert f"corrupt  {bad}  SHA-384 is " in result.stdout and f"unaccounted  {stray}  not made by the cache" in result.stdout
    assert result.stdout.strip().endswith("2 NOT clean")
    # a young stray may be a live temporary: repair leaves it; an old one goes
    result = cache_tool("verify", "--cache_dir", cache, "--repair", "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and [f["status"] for f in doc["removed"]] == ["corrupt"]
    assert [f["path"] for f in doc["findings"]] == [str(stray)] and not bad.exists()
    assert not bad.with_suffix(".ok").exists()
    os.utime(stray, (time.time() - 2 * 3600,) * 2)
    assert cache_tool("verify", "--cache_dir", cache, "--repair").returncode == 0 and not stray.exists()
    assert cache_tool("verify", "--cache_dir", cache).returncode == 0
    # the downloader fetches what repair removed, verified
    out = tmp_path / "again"
    download(zoo, out, cache, "--name", "b")
    assert (out / "public/b/b1.bin").read_bytes() == files["b1"] and bad.exists()


def test_verify_notices_a_blob_changed_while_it_is_read(server, zoo, tmp_path):
    data = os.urandom(96 << 20)
    write_model(zoo, "big", [{"name": "big.bin", "data": data, "url": server.add("/big.bin", data)}])
    cache = tmp_path / "cache"
    download(zoo, tmp_path / "out", cache, "--name", "big")
    path = blob(cache, data)
    # another process keeps writing into the blob (through its hard link, as an editor would): a byte
    # that always differs from the original (a random one was the same 1 time in 256)
    writer = subprocess.Popen([sys.executable, "-c",
                               "import os, sys, time\n"
                               "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
                               "while True:\n"
                               "    os.pwrite(fd, bytes([int(sys.argv[2])]), 1000); time.sleep(0.001)\n",
                               str(tmp_path / "out/public/big/big.bin"), str(data[1000] ^ 1)])
    try:
        result = cache_tool("verify", "--cache_dir", cache, "--repair")
    finally:
        writer.kill()
        writer.wait()
    assert result.returncode == 1, result.stdout
    assert f"changed  {path}  changed while being verified; verify again" in result.stdout
    assert path.exists()  # not removed by --repair: it is being changed, not known to be wrong
    after = cache_tool("verify", "--cache_dir", cache)
    assert after.returncode == 1 and f"corrupt  {path}" in after.stdout


def _serve(zoo, tmp_path, cache, name, run: list[int]) -> None:
    run[0] += 1
    result = download(zoo, tmp_path / f"serve{run[0]}", cache, "--name", name)
    assert "cached" in result.stdout


def test_prune_to_a_size_removes_the_least_recently_used_first(server, zoo, tmp_path):
    data = {f"m{i}": os.urandom(100 * KB) for i in range(4)}
    for name, d in data.items():
        write_model(zoo, name, [{"name": f"{name}.bin", "data": d, "url": server.add(f"/{name}.bin", d)}])
    cache = tmp_path / "cache"
    download(zoo, tmp_path / "first", cache, "--all")
    two_days_ago = time.time() - 2 * DAY
    for d in data.values():  # time passes: none used for two days
        os.utime(record(cache, d), (two_days_ago, two_days_ago))
    run = [0]
    for name in ("m2", "m0", "m3"):  # served in this order; m1 not at all
        _serve(zoo, tmp_path, cache, name, run)
    assert record(cache, data["m2"]).stat().st_mtime > two_days_ago + DAY

    dry = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "250K", "--dry_run")
    assert dry.returncode == 0, dry.stderr
    removing = [line for line in dry.stdout.splitlines() if line.startswith("would remove  ")]
    assert [line.rsplit("(", 1)[1] for line in removing] == ["m1)", "m2)"]
    assert dry.stdout.splitlines()[-1] == "would remove 2 entries, would free 0 B (200.0 KB more stay in output " \
                                          "folders that link to them)"
    assert all(blob(cache, d).exists() for d in data.values())

    doc = as_json("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "250K")
    assert [(e["models"], e["bytes"]) for e in doc["removed"]] == [(["m1"], 100 * KB), (["m2"], 100 * KB)]
    assert {n for n, d in data.items() if blob(cache, d).exists()} == {"m0", "m3"}
    assert not record(cache, data["m1"]).exists()
    # a hard-linked output keeps its bytes
    assert (tmp_path / "first/public/m1/m1.bin").read_bytes() == data["m1"]
    assert doc["freed_bytes"] == 0 and doc["linked_bytes"] == 200 * KB


def test_prune_by_age_reference_partials_and_keep(server, zoo, filled, tmp_path):
    cache, files = filled
    old, recent = time.time() - 10 * DAY, time.time() - 6 * DAY  # (--older_than counts days, not hours or seconds)
    for name in ("a2", "c1"):
        os.utime(record(cache, files[name]), (old, old))
    for name in ("a1", "b1"):
        os.utime(record(cache, files[name]), (recent, recent))
    (zoo / "public" / "c" / "model.yml").unlink()
    partial = blob(cache, b"never finished").with_suffix(".incomplete")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"never")

    def removed(*args) -> set[str]:
        doc = as_json("prune", "--cache_dir", cache, "--models_dir", zoo, "--dry_run", *args)
        return {e["sha384"][:6] + ":" + e["kind"] for e in doc["removed"]}

    tag = {n: sha384(d)[:6] + ":blob" for n, d in files.items()}
    assert removed("--older_than", "7") == {tag["a2"], tag["c1"]}
    assert removed("--older_than", "7", "--keep", "a") == {tag["c1"]}
    assert removed("--unreferenced") == {tag["c1"]}
    assert removed("--partials") == {sha384(b"never finished")[:6] + ":partial"}
    assert removed("--max_size", "0", "--keep", "b") == {tag["a2"], tag["c1"], sha384(b"never finished")[:6] + ":partial"}

    result = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--older_than", "7", "--partials")
    assert result.returncode == 0, result.stderr
    assert not partial.exists() and not blob(cache, files["a2"]).exists() and not blob(cache, files["c1"]).exists()
    assert blob(cache, files["a1"]).exists() and blob(cache, files["b1"]).exists()
    assert cache_tool("verify", "--cache_dir", cache).returncode == 0


def test_rm_removes_the_files_of_the_models_named(server, zoo, filled, tmp_path):
    cache, files = filled
    result = cache_tool("rm", "--cache_dir", cache, "--models_dir", zoo, "--name", "a")
    assert result.returncode == 0, result.stderr
    assert "removed 2 entries" in result.stdout
    assert not blob(cache, files["a1"]).exists() and not blob(cache, files["a2"]).exists()
    assert blob(cache, files["b1"]).exists() and blob(cache, files["c1"]).exists()
    assert one_error_line(cache_tool("rm", "--cache_dir", cache, "--models_dir", zoo, "--name", "zz")).startswith(
        "modelzoo-cache: error: no model matches 'zz'")


def test_a_prune_during_a_download_of_the_same_file_leaves_a_verified_output(server, zoo, tmp_path):
    data = os.urandom(3 << 20)
    # the prune must start and scan while the download stalls: 10 s leaves room for a loaded machine
    server.add("/slow.bin", data, Fault(times=1, stall_after=1 << 20, stall_seconds=10))
    write_model(zoo, "slow", [{"name": "slow.bin", "data": data, "url": server.url("/slow.bin")}])
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "-o", str(out),
                             "--cache_dir", str(cache), "--name", "slow", "--num_attempts", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = blob(cache, data).with_suffix(".incomplete")
    _wait_for(lambda: partial.exists() and partial.stat().st_size >= 1 << 20, "1 MB in the partial file", timeout=30)
    result = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "0", "--partials")
    _, stderr = proc.communicate(timeout=60)
    assert result.returncode == 0, result.stderr
    assert "in use   partial" in result.stdout and "removed 0 entries" in result.stdout
    assert proc.returncode == 0, stderr
    assert (out / "public/slow/slow.bin").read_bytes() == data
    # the same prune now removes the blob; the hard-linked output keeps its bytes
    doc = as_json("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "0")
    assert [e["kind"] for e in doc["removed"]] == ["blob"] and not blob(cache, data).exists()
    assert sha384((out / "public/slow/slow.bin").read_bytes()) == sha384(data)


def test_two_prunes_at_once(filled):
    cache, _ = filled
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\n"
                               f"sys.path.insert(0, {str(REPO / 'tools')!r})\n"
                               "from pathlib import Path\n"
                               "from modelzoo.store import cache_admin\n"
                               "with cache_admin._one_prune(cache_admin.open_cache(Path(sys.argv[1]))):\n"
                               "    print('holding', flush=True); time.sleep(60)\n", str(cache)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = cache_tool("prune", "--cache_dir", cache, "--max_size", "0")
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert one_error_line(result) == f"modelzoo-cache: error: another prune of {cache} is running; try again when it is done"
    assert len(list(cache.rglob("*.ok"))) == 4  # nothing removed


def test_a_read_only_cache_is_listed_and_verified_but_not_pruned(server, zoo, tmpfs, tmp_path):
    data = os.urandom(100 * KB)
    write_model(zoo, "m", [{"name": "m.bin", "data": data, "url": server.add("/m.bin", data)}])
    mnt = tmpfs("5m")
    download(zoo, tmp_path / "out", mnt, "--name", "m")
    old = time.time() - 2 * DAY
    os.utime(record(mnt, data), (old, old))
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    served = run_tool("downloader", "--models_dir", zoo, "-o", tmp_path / "again", "--cache_dir", mnt, "--name", "m")
    assert served.returncode == 0 and "cached" in served.stdout  # served from the cache...
    assert record(mnt, data).stat().st_mtime == old  # ...with no write to it (no "last used" on a read-only cache)
    doc = as_json("ls", "--cache_dir", mnt, "--models_dir", zoo)
    assert doc["writable"] is False and doc["models"][0]["bytes"] == 100 * KB
    assert cache_tool("verify", "--cache_dir", mnt).returncode == 0
    assert cache_tool("prune", "--cache_dir", mnt, "--models_dir", zoo, "--max_size", "0", "--dry_run").returncode == 0
    for args in (["prune", "--max_size", "0"], ["rm", "--name", "m"]):
        result = cache_tool(*args, "--cache_dir", mnt, "--models_dir", zoo)
        assert result.returncode == 1
        assert one_error_line(result) == f"modelzoo-cache: error: cache folder {mnt} cannot be written: it cannot be pruned"
    assert blob(mnt, data).exists()


@pytest.mark.parametrize("args, message", [
    (["prune", "--max_size", "10XB"], "argument --max_size: '10XB' is not a size (bytes, or a number with K, M, G, T, "
                                      "KiB, MiB, GiB or TiB)"),
    (["prune", "--older_than", "-1"], "argument --older_than: must be a number of days from 0 to 1000000 (got '-1')"),
    (["prune"], "give at least one of --max_size, --older_than, --unreferenced, --partials"),
    (["prune", "--max_size", "0", "--keep", "retinanet-tf,"], "--keep 'retinanet-tf,': empty name in the list"),
    (["ls", "--cache_dir", "{file}"], "cache folder {file} is not a folder"),
    (["verify", "--cache_dir", "{missing}"], "cache folder {missing} does not exist"),
], ids=["size", "age", "nothing", "keep", "file", "missing"])
def test_bad_input_is_one_line(tmp_path, args, message):
    (tmp_path / "file").write_text("not a cache")
    (tmp_path / "cache").mkdir()
    paths = {"file": tmp_path / "file", "missing": tmp_path / "missing"}
    args = [a.format(**paths) for a in args]
    if "--cache_dir" not in args:
        args += ["--cache_dir", str(tmp_path / "cache")]
    result = cache_tool(*args)
    assert result.returncode == 2
    assert one_error_line(result) == "modelzoo-cache: error: " + message.format(**paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "file"]


def test_prunes_racing_warm_downloads_leave_every_output_verified(server, zoo, tmp_path):
    """The warm path takes no lock: a blob pruned between its check and its link makes the
    downloader fetch the file again. Whatever the timing, every output is the right file."""
    data = {f"r{i:02}": os.urandom(64 * KB) for i in range(40)}
    for name, d in data.items():
        write_model(zoo, name, [{"name": f"{name}.bin", "data": d, "url": server.add(f"/{name}.bin", d)}])
    cache = tmp_path / "cache"
    download(zoo, tmp_path / "first", cache, "--all")
    runs = [subprocess.Popen([sys.executable, str(SCRIPTS / "downloader.py"), "--models_dir", str(zoo), "-o",
                              str(tmp_path / f"out{i}"), "--cache_dir", str(cache), "--all", "-j", "4"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    prunes = [cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "0") for _ in range(3)]
    for proc in runs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert all(p.returncode == 0 for p in prunes), [p.stderr for p in prunes]
    assert sum(int(p.stdout.splitlines()[-1].split()[1]) for p in prunes) > 0  # "removed N entries, ..."
    for i in range(3):
        for name, d in data.items():
            assert sha384((tmp_path / f"out{i}/public/{name}/{name}.bin").read_bytes()) == sha384(d)


def test_unreferenced_is_refused_while_a_descriptor_cannot_be_read(zoo, filled):
    cache, files = filled
    config = zoo / "public" / "b" / "model.yml"
    config.write_text(config.read_text().replace("files:", "files: [", 1))  # not YAML any more
    result = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--unreferenced")
    assert result.returncode == 1
    assert one_error_line(result).startswith("modelzoo-cache: error: --unreferenced: cannot tell which files b name (")
    assert one_error_line(result).endswith("); nothing removed")
    assert all(blob(cache, d).exists() for d in files.values())


def test_keep_is_refused_while_a_kept_descriptor_cannot_be_read(zoo, filled):
    """--keep b with b's descriptor broken would remove b's files (they look unreferenced)."""
    cache, files = filled
    config = zoo / "public" / "b" / "model.yml"
    config.write_text(config.read_text().replace("files:", "files: [", 1))
    result = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "0", "--keep", "b")
    assert result.returncode == 1
    assert one_error_line(result).startswith("modelzoo-cache: error: --keep: cannot tell which files b name (")
    assert all(blob(cache, d).exists() for d in files.values())
    # a broken descriptor --keep does not name is a warning, as before
    result = cache_tool("prune", "--cache_dir", cache, "--models_dir", zoo, "--max_size", "0", "--keep", "c")
    assert result.returncode == 0 and "warning" in result.stderr and blob(cache, files["c1"]).exists()
    assert not blob(cache, files["b1"]).exists()


def test_odd_file_names_are_printed_on_one_line_each_whatever_the_terminal(filled):
    """Names that are not UTF-8 or hold a newline: verify prints each as one escaped line (no
    traceback on a strict UTF-8 or ASCII stdout); --json stays valid and names them."""
    cache, files = filled
    shard = blob(cache, files["a1"]).parent
    odd = [os.fsencode(shard) + b"/bad\xff\xfename", os.fsencode(shard) + b"/new\nline",
           os.fsencode(cache) + b"/sha384/\xe9t\xe9"]
    for name in odd:
        with open(name, "wb") as f:
            f.write(b"x")
    for encoding in ("utf-8", "ascii"):
        result = cache_tool("verify", "--cache_dir", cache, env={"PYTHONIOENCODING": encoding})
        assert result.returncode == 1 and result.stderr == "", result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 4 and lines[-1].endswith("3 NOT clean")
        assert f"unaccounted  {shard}/bad\\xff\\xfename  not made by the cache" in lines
        assert f"unaccounted  {shard}/new\\nline  not made by the cache" in lines
        assert f"unaccounted  {cache}/sha384/\\xe9t\\xe9  not made by the cache" in lines
    result = cache_tool("verify", "--cache_dir", cache, "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and sorted(os.fsencode(f["path"]) for f in doc["findings"]) == sorted(odd)


def test_repair_of_a_read_only_cache_is_refused_before_any_hashing(tmp_path, tmpfs):
    """As prune is: said at once, whatever the cache holds (before, a clean one passed after
    hashing everything and one with findings failed after it, the findings unprinted)."""
    mnt = tmpfs("1m")
    shard = mnt / "sha384" / "ab"
    shard.mkdir(parents=True)
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    for clean in (True, False):
        if not clean:
            subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
            (shard / "stray").write_bytes(b"x")
            subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        result = cache_tool("verify", "--cache_dir", mnt, "--repair")
        assert result.returncode == 1 and result.stdout == ""
        assert one_error_line(result) == f"modelzoo-cache: error: cache folder {mnt} cannot be written: it cannot be repaired"
        assert cache_tool("verify", "--cache_dir", mnt).returncode == (0 if clean else 1)  # verify alone reads it


def _fill_quickly(cache: Path, count: int, size: int) -> list[str]:
    """count blobs of size random bytes, added as the downloader adds them (Cache.add), oldest
    first: their SHA-384s in the order they were added."""
    from modelzoo.store.cache import Cache

    store = Cache(cache)
    added = []
    for _ in range(count):
        data = os.urandom(size)
        sha = sha384(data)
        partial = store.partial_path(sha)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        store.add(sha, partial, size)
        added.append(sha)
    return added


def _ctrl_c(args: list, started, allow_finished: bool = False) -> subprocess.CompletedProcess | None:
    """Run modelzoo-cache in its own process group, and press Ctrl-C (SIGINT to the whole group,
    as a terminal does) once started() says it is under way. With allow_finished, a run that
    finished before the Ctrl-C could be sent gives None (a caller that can try again does)."""
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "cache.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not started(proc) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.0005)
    if proc.poll() is not None:
        _, stderr = proc.communicate()
        assert allow_finished, "finished before it could be interrupted"
        assert proc.returncode == 0, stderr  # finished by itself: then it must have succeeded
        return None
    os.killpg(proc.pid, signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # a hang is the failure; never leave the process behind
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_ctrl_c_during_a_prune_leaves_every_entry_whole(tmp_path):
    """Every try must leave whole entries and exit 130; at least one must land mid-way (on a
    loaded machine this process may be descheduled long enough for a 0.3 s prune to finish
    first, so it tries up to five times)."""
    midway = False
    for attempt in range(5):
        cache = tmp_path / f"cache{attempt}"
        first = _fill_quickly(cache, 4000, 100)[0]  # the least recently used: the first to go
        first_record = cache / "sha384" / first[:2] / f"{first[2:]}.ok"
        # (one stat, not a listing of 4,000 records: Ctrl-C must come while the removal is young)
        result = _ctrl_c(["prune", "--cache_dir", cache, "--models_dir", tmp_path, "--max_size", "0"],
                         lambda proc: not first_record.exists(), allow_finished=True)
        print("ATTEMPT", attempt, None if result is None else (result.returncode, result.stderr[-300:]), flush=True)
        if result is None or result.returncode == 0:  # finished before the Ctrl-C, or as it was sent: try again
            continue
        assert result.returncode == 130 and one_error_line(result) == "modelzoo-cache: interrupted"
        blobs = {p.name for p in cache.glob("sha384/*/*") if "." not in p.name}
        assert {p.stem for p in cache.glob("sha384/*/*.ok")} == blobs  # no blob without its record, no record alone
        assert cache_tool("verify", "--cache_dir", cache).returncode == 0
        print("BLOBS", len(blobs))
        if 0 < len(blobs) < 4000:
            midway = True
            break
    assert midway, "no Ctrl-C landed while the prune was removing"


def test_ctrl_c_during_verify_stops_every_worker(tmp_path):
    """Ctrl-C as soon as the workers exist, five times: the moment right after a fork is the
    narrow one where a worker used to print a traceback of its own."""
    cache = tmp_path / "cache"
    _fill_quickly(cache, 8, 48 << 20)
    seen: list[str] = []

    def hashing(proc) -> bool:  # its worker processes are running (-j 3: itself and two forked ones)
        seen[:] = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        return len(seen) == 2

    for _ in range(5):
        result = _ctrl_c(["verify", "--cache_dir", cache, "-j", "3"], hashing)
        assert result.returncode == 130 and one_error_line(result) == "modelzoo-cache: interrupted"
        assert result.stdout == "" and not any(Path(f"/proc/{pid}").exists() for pid in seen)  # (reaped)
    assert len(list(cache.glob("sha384/*/*.ok"))) == 8


def test_ls_lists_the_conversions_of_the_ir_cache_and_a_broken_entry_in_one_line(tmp_path, zoo):
    """A real conversion (the converter's ovc backend, --cache_dir) makes the IR cache entry; a
    second entry is then damaged, a third names a blob the store lost: ls lists all three."""
    from test_ir_cache import convert, setup

    from modelzoo.store import ir_cache

    w = setup(tmp_path, zoo)
    result = convert(w, tmp_path / "ir", "--precisions", "FP16,FP32")
    assert result.returncode == 0, result.stderr
    [entry] = (w["cache"] / "ir" / "keys").glob("*/*.json")
    key = entry.parent.name + entry.stem
    data = json.loads(entry.read_text())
    ir_bytes = sum(p.stat().st_size for p in (tmp_path / "ir/public/tiny-c").rglob("*") if p.is_file())
    assert ir_bytes == sum(f["size"] for f in data["files"]) and len(data["files"]) == 4
    # a broken entry (not JSON) and one whose blob is gone, beside the good one
    broken = ir_cache.IrCache(w["cache"]).entry_path("ab" * 48)
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("{not json")
    lost_key = "cd" * 48
    lost = ir_cache.IrCache(w["cache"]).entry_path(lost_key)
    lost.parent.mkdir(parents=True, exist_ok=True)
    lost.write_text(json.dumps(data | {"key": lost_key, "files": [{"path": "FP16/tiny-c.xml", "size": 5,
                                                                  "sha384": "ef" * 48}]}))

    doc = as_json("ls", "--cache_dir", w["cache"], "--models_dir", zoo)
    conv = {c["key"]: c for c in doc["conversions"]}
    assert set(conv) == {key, "ab" * 48, lost_key}
    good = conv[key]
    assert good | {"last_used": None} == {
        "key": key, "path": str(entry), "model": "tiny-c", "precisions": ["FP16", "FP32"], "backend": "ovc",
        "backend_version": data["record"]["backend_version"], "tools": {}, "bytes": ir_bytes, "last_used": None,
        "broken": None}
    assert good["last_used"].endswith("Z") and data["record"]["backend_version"]
    assert conv["ab" * 48]["broken"].startswith("cannot be read") and conv["ab" * 48]["bytes"] == 0
    assert conv[lost_key]["broken"] == "1 of its 1 files are not in the IR store"
    assert doc["totals"]["conversions"] == 3 and doc["totals"]["broken_conversions"] == 2
    assert doc["totals"]["conversion_bytes"] == ir_bytes + 5
    assert doc["totals"]["blobs"] == 0  # (the IR's blobs are the IR cache's, not downloads)

    text = cache_tool("ls", "--cache_dir", w["cache"], "--models_dir", zoo)
    assert text.returncode == 0 and text.stderr == ""
    lines = text.stdout.splitlines()
    header = lines.index(next(x for x in lines if x.startswith("CONVERSION")))
    assert lines[header].split() == ["CONVERSION", "PRECISIONS", "BACKEND", "KEY", "SIZE", "LAST", "USED"]
    row = lines[header + 1].split()
    assert row[:5] == ["tiny-c", "FP16,FP32", "ovc", data["record"]["backend_version"], key[:12]]
    assert " ".join(row[5:7]) == human_size(ir_bytes)
    broken_rows = [x for x in lines if x.startswith("(broken)")]
    assert len(broken_rows) == 2 and all(("ab" * 6) in x or ("cd" * 6) in x for x in broken_rows)
    assert f"conversions   3 IR cache entries, {human_size(ir_bytes + 5)} (2 broken)" in text.stdout
