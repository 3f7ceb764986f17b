"""mirror.py sync / verify into a folder, through the real CLI, against a loopback server, nginx
and squid. (S3 is in test_mirror_s3.py.)"""

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
from conftest import SCRIPTS, _wait_for, one_error_line, run_tool, sha384, write_model

from modelzoo.devtools.servers import Nginx, Squid
from modelzoo.mirror.stores import MANIFEST

DEAD = "http://127.0.0.1:9"  # nothing listens there: a source that must not be needed


def make_zoo(zoo: Path, server, models: dict[str, dict[str, bytes]]) -> None:
    """models: name -> {file name: bytes}; every file is served by `server` at /<name>/<file>."""
    for name, files in models.items():
        entries = []
        for fname, data in files.items():
            url = server.add(f"{name}/{fname}", data) if server is not None else f"{DEAD}/{name}/{fname}"
            entries.append({"name": fname, "data": data, "url": url})
        write_model(zoo, name, entries)


MODELS = {
    "alpha": {"alpha.pb": b"alpha" * 1000},
    "beta": {"beta.onnx": os.urandom(3000), "extra/beta.json": b'{"beta": 1}'},
    "gamma": {"FP16/gamma.xml": b"<net16/>", "FP16/gamma.bin": os.urandom(500),
              "FP32/gamma.xml": b"<net32/>", "FP32/gamma.bin": os.urandom(1000)},
}


def manifest(dest: Path) -> dict:
    return json.loads((dest / MANIFEST).read_text())


def files_under(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in sorted(dest.rglob("*")) if p.is_file()}


def sync(zoo: Path, dest: Path | str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_tool("mirror", "sync", "--models_dir", zoo, "--to", dest, *args, env=env)


def verify(zoo: Path, dest: Path | str, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_tool("mirror", "verify", "--models_dir", zoo, "--at", dest, *args, env=env)


def test_first_sync_layout_manifest_changes_then_no_change_resync(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest, changes = tmp_path / "mirror", tmp_path / "changes.txt"
    result = sync(zoo, dest, "--all", "--changes", changes)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    expected = {f"public/{m}/{f}": data for m, files in MODELS.items() for f, data in files.items()}
    on_disk = files_under(dest)
    assert on_disk.pop(MANIFEST) and on_disk.pop(".modelzoo-mirror.lock") == b""
    assert on_disk == expected  # the layout downloader.py --mirror reads; nothing else, no temporaries
    assert changes.read_text().splitlines() == sorted(expected) + [MANIFEST]

    m = manifest(dest)
    assert m["format"] == "modelzoo-mirror/1" and sorted(m["files"]) == sorted(expected)
    entry = m["files"]["public/beta/extra/beta.json"]
    descriptor = zoo / "public/beta/model.yml"
    assert entry["size"] == len(MODELS["beta"]["extra/beta.json"])
    assert entry["sha384"] == sha384(MODELS["beta"]["extra/beta.json"])
    assert entry["source"] == server.url("beta/extra/beta.json")
    assert entry["descriptor"] == "public/beta/model.yml"
    assert entry["descriptor_sha384"] == sha384(descriptor.read_bytes())
    assert entry["model"] == "beta" and entry["verified"].endswith("Z")

    requests_before = server.count()
    manifest_stat = (dest / MANIFEST).stat()
    result = sync(zoo, dest, "--all", "--changes", changes, "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    end = [json.loads(line) for line in result.stdout.splitlines()][-1]
    assert end["$type"] == "mirror_sync_end"
    assert end["fetched"] == 0 and end["present"] == 7 and end["upstream_requests"] == 0
    assert end["manifest_written"] is False
    assert server.count() == requests_before  # no upstream request
    assert (dest / MANIFEST).stat().st_mtime_ns == manifest_stat.st_mtime_ns  # not rewritten
    assert changes.read_text() == ""


def test_precisions_and_name_select_files(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    result = sync(zoo, dest, "--name", "gamma", "--precisions", "FP16")
    assert result.returncode == 0, result.stderr
    assert sorted(manifest(dest)["files"]) == ["public/gamma/FP16/gamma.bin", "public/gamma/FP16/gamma.xml"]


def test_changed_descriptor_refetches_that_file_only(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest, changes = tmp_path / "mirror", tmp_path / "changes.txt"
    assert sync(zoo, dest, "--all").returncode == 0
    new = os.urandom(3000)
    server.add("beta/beta.onnx", new)
    yml = zoo / "public/beta/model.yml"
    yml.write_text(yml.read_text().replace(sha384(MODELS["beta"]["beta.onnx"]), sha384(new)))
    before = {p: server.count(p) for p in ("beta/beta.onnx", "beta/extra/beta.json", "alpha/alpha.pb")}
    result = sync(zoo, dest, "--all", "--changes", changes)
    assert result.returncode == 0, result.stderr
    assert server.count("beta/beta.onnx") == before["beta/beta.onnx"] + 1
    assert server.count("beta/extra/beta.json") == before["beta/extra/beta.json"]
    assert server.count("alpha/alpha.pb") == before["alpha/alpha.pb"]
    assert (dest / "public/beta/beta.onnx").read_bytes() == new
    assert changes.read_text().splitlines() == ["public/beta/beta.onnx", MANIFEST]
    m = manifest(dest)["files"]
    assert m["public/beta/beta.onnx"]["sha384"] == sha384(new)
    # the descriptor's new checksum is recorded for its other file too
    assert m["public/beta/extra/beta.json"]["descriptor_sha384"] == sha384(yml.read_bytes())


def test_delete_removes_only_what_the_mirror_owns(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    assert sync(zoo, dest, "--all").returncode == 0
    (dest / "public/alpha/notes.txt").write_text("a user's file")
    (dest / "README").write_text("about this mirror")

    result = sync(zoo, dest, "--name", "alpha,gamma")  # without --delete: nothing removed
    assert result.returncode == 0 and (dest / "public/beta/beta.onnx").exists()

    result = sync(zoo, dest, "--name", "alpha,gamma", "--delete", "--dry_run")
    assert result.returncode == 0
    assert "    delete  public/beta/beta.onnx" in result.stdout and "2 to delete" in result.stdout
    assert (dest / "public/beta/beta.onnx").exists()

    result = sync(zoo, dest, "--name", "alpha,gamma", "--delete")
    assert result.returncode == 0, result.stderr
    assert not (dest / "public/beta").exists()  # files gone, and the folders they emptied
    assert (dest / "public/alpha/notes.txt").read_text() == "a user's file"
    assert (dest / "README").exists()
    assert sorted(manifest(dest)["files"]) == sorted(
        f"public/{m}/{f}" for m in ("alpha", "gamma") for f in MODELS[m])


def test_dry_run_of_a_first_sync_needs_no_network(zoo, tmp_path):
    make_zoo(zoo, None, MODELS)  # every source is dead
    dest = tmp_path / "mirror"
    result = sync(zoo, dest, "--all", "--dry_run")
    assert result.returncode == 0, result.stderr
    total = sum(len(d) for files in MODELS.values() for d in files.values())
    assert result.stdout.count("     fetch  ") == 7
    assert "7 files selected; 7 to fetch (" in result.stdout and f"{total:,} bytes" in result.stdout
    assert not dest.exists()


def test_one_failing_file_fails_its_model_only(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    server.files.pop("/beta/extra/beta.json")  # the source lost one file: 404
    dest = tmp_path / "mirror"
    result = sync(zoo, dest, "--all", "-j", "3")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert lines[0].startswith("modelzoo-mirror: error: beta: ") and "404" in lines[0]
    assert lines[1] == "modelzoo-mirror: failed: beta"
    files = manifest(dest)["files"]
    assert "public/beta/extra/beta.json" not in files and not (dest / "public/beta/extra/beta.json").exists()
    assert "public/alpha/alpha.pb" in files and "public/gamma/FP32/gamma.bin" in files
    assert "public/beta/beta.onnx" in files  # the model's other file was fine


def test_invalid_descriptor_fails_its_model_and_the_rest_goes_on(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    (zoo / "public/beta/model.yml").write_text("files: [")
    dest = tmp_path / "mirror"
    result = sync(zoo, dest, "--all")
    assert result.returncode == 1
    error, summary = result.stderr.splitlines()
    assert error.startswith(f"modelzoo-mirror: error: {zoo / 'public/beta/model.yml'}: line ")
    assert summary == "modelzoo-mirror: failed: beta"
    assert sorted(manifest(dest)["files"]) == sorted(
        f"public/{m}/{f}" for m in ("alpha", "gamma") for f in MODELS[m])
    # --delete never removes what an unloadable descriptor may still own
    (zoo / "public/beta/model.yml").unlink()
    write_model(zoo, "beta", [{"name": "beta.onnx", "data": MODELS["beta"]["beta.onnx"],
                               "url": server.url("beta/beta.onnx")}])
    assert sync(zoo, dest, "--all").returncode == 0
    (zoo / "public/beta/model.yml").write_text("files: [")
    result = sync(zoo, dest, "--all", "--delete")
    assert result.returncode == 1 and (dest / "public/beta/beta.onnx").exists()


def test_verify_finds_each_problem_and_repair_fixes_them(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    assert sync(zoo, dest, "--all").returncode == 0
    assert verify(zoo, dest, "--all").returncode == 0

    (dest / "public/alpha/alpha.pb").unlink()  # missing
    (dest / "public/beta/extra/beta.json").write_bytes(b"{}")  # wrong size
    wrong = bytearray(MODELS["gamma"]["FP32/gamma.bin"])
    wrong[10] ^= 0xFF
    (dest / "public/gamma/FP32/gamma.bin").write_bytes(bytes(wrong))  # same size, wrong SHA-384
    (dest / "public/stray.bin").write_bytes(b"?")  # not the mirror's

    for quick in ((), ("--quick",)):
        result = verify(zoo, dest, "--all", *quick)
        assert result.returncode == 1, result.stdout
        rows = dict(reversed(re.match(r"(missing|wrong size|wrong SHA-384|unknown|not in manifest) +(\S+)", line)
                             .groups()) for line in result.stdout.splitlines()[1:-1])
        assert rows == {"public/alpha/alpha.pb": "missing", "public/beta/extra/beta.json": "wrong size",
                        "public/gamma/FP32/gamma.bin": "wrong SHA-384", "public/stray.bin": "unknown"}, result.stdout
        assert result.stdout.splitlines()[-1].endswith("; NOT clean")
        assert "4 ok, 1 missing, 1 wrong size, 1 wrong SHA-384, 1 unknown" in result.stdout

    result = verify(zoo, dest, "--all", "--repair")
    assert result.returncode == 1  # the unknown file is not ours to touch
    assert "3 repaired" in result.stdout and "unknown files are not touched" in result.stdout
    assert (dest / "public/gamma/FP32/gamma.bin").read_bytes() == MODELS["gamma"]["FP32/gamma.bin"]
    assert (dest / "public/alpha/alpha.pb").read_bytes() == MODELS["alpha"]["alpha.pb"]
    (dest / "public/stray.bin").unlink()
    result = verify(zoo, dest, "--all")
    assert result.returncode == 0 and result.stdout.splitlines()[-1].endswith("7 ok; clean")


def test_verify_json_events_and_unrecorded_files(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    assert sync(zoo, dest, "--all").returncode == 0
    (dest / MANIFEST).unlink()  # a lost manifest: the files are right, nothing vouches for them
    result = verify(zoo, dest, "--all", "--progress_format", "json")
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["status"] for e in events[:-1]} == {"not in manifest"} and len(events) == 8
    assert events[-1] == {"$type": "mirror_verify_end", "clean": False, "counts": {"not in manifest": 7},
                          "files": 7}
    requests_before = server.count()
    # a sync adopts them (hashing what is there) instead of fetching them again
    result = sync(zoo, dest, "--all")
    assert result.returncode == 0 and "7 checked in place" in result.stdout
    assert server.count() == requests_before
    assert verify(zoo, dest, "--all").returncode == 0


def test_full_verify_sync_refetches_a_silently_corrupted_file(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    assert sync(zoo, dest, "--all").returncode == 0
    target = dest / "public/beta/beta.onnx"
    st = target.stat()
    with open(target, "r+b") as f:  # bit rot: same inode, size and mtime
        f.write(bytes([MODELS["beta"]["beta.onnx"][0] ^ 1]))  # always differs (a fixed byte: 1 in 256 did not)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    result = sync(zoo, dest, "--all")
    assert result.returncode == 0 and "0 published" in result.stdout  # quick: trusts the manifest
    result = sync(zoo, dest, "--all", "--verify", "full")
    assert result.returncode == 0, result.stderr
    assert "public/beta/beta.onnx: the mirror's copy is not the descriptor's file" in result.stderr
    assert target.read_bytes() == MODELS["beta"]["beta.onnx"]


def test_a_descriptor_with_a_wrong_size_costs_no_good_cache_blob(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    cache = tmp_path / "cache"
    assert sync(zoo, tmp_path / "first", "--all", "--cache_dir", cache).returncode == 0
    data = MODELS["alpha"]["alpha.pb"]
    write_model(zoo, "twin", [{"name": "alpha.pb", "size": len(data) + 1, "checksum": sha384(data),
                               "url": server.url("alpha/alpha.pb")}])
    result = sync(zoo, tmp_path / "second", "--name", "twin", "--cache_dir", cache)
    assert result.returncode == 1
    assert ("public/twin/alpha.pb (the descriptor's size; the cache holds the file with its SHA-384): size "
            f"mismatch: expected {len(data) + 1} bytes, got {len(data)}") in result.stderr
    requests = server.count()
    assert sync(zoo, tmp_path / "third", "--name", "alpha", "--cache_dir", cache).returncode == 0
    assert server.count() == requests  # the blob is still there


def test_a_read_only_cache_serves_nothing_it_lacks_and_the_sync_goes_on(zoo, server, tmp_path, tmpfs):
    """The mirror obtains files as the downloader does (obtain.py): a cache it may not write is a
    warning, and the files are fetched without it."""
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    ro = tmpfs("1m", readonly=True)
    result = sync(zoo, tmp_path / "m", "--all", "--cache_dir", ro)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (f"modelzoo-mirror: warning: cache folder {ro} cannot be written: using what it "
                             "holds, fetching the rest\n")
    assert (tmp_path / "m/public/alpha/alpha.pb").read_bytes() == MODELS["alpha"]["alpha.pb"]


def test_upstream_mirror_and_cache(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    first, cache = tmp_path / "first", tmp_path / "cache"
    assert sync(zoo, first, "--all", "--cache_dir", cache).returncode == 0
    requests = server.count()
    # from the warm cache: no request
    assert sync(zoo, tmp_path / "second", "--all", "--cache_dir", cache).returncode == 0
    assert server.count() == requests
    # from an upstream mirror, with the sources dead
    for yml in zoo.glob("public/*/model.yml"):
        yml.write_text(yml.read_text().replace(server.base_url, DEAD))
    result = sync(zoo, tmp_path / "third", "--all", "--mirror", first.as_uri())
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "third").keys() == files_under(first).keys()


def test_file_url_destination(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    dest = tmp_path / "m i r"
    assert sync(zoo, dest.as_uri(), "--all").returncode == 0
    assert (dest / "public/alpha/alpha.pb").read_bytes() == MODELS["alpha"]["alpha.pb"]
    assert verify(zoo, dest.as_uri(), "--all").returncode == 0


def test_two_syncs_at_once_keep_manifest_and_files_consistent(zoo, server, tmp_path):
    """Two processes sync overlapping selections into one folder at the same time: each file
    matches its manifest entry, and the manifest names every file either run completed."""
    models = {f"m{i:02}": {f"m{i:02}.bin": os.urandom(2000 + i)} for i in range(40)}
    make_zoo(zoo, server, models)
    dest = tmp_path / "mirror"
    cmd = [sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo), "--to", str(dest), "-j", "4"]
    runs = [subprocess.Popen(cmd + ["--name", pattern], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for pattern in ("m0*,m1*,m2*", "m1*,m2*,m3*")]
    for p in runs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    files = manifest(dest)["files"]
    assert sorted(files) == sorted(f"public/{m}/{m}.bin" for m in models)
    for rel, entry in files.items():
        data = (dest / rel).read_bytes()
        assert (len(data), sha384(data)) == (entry["size"], entry["sha384"])
    assert verify(zoo, dest, "--all").returncode == 0
    assert verify(zoo, dest, "--all", "--quick").returncode == 0  # the stamps are right too


def test_interrupted_sync_leaves_no_temporaries(zoo, server, tmp_path):
    from modelzoo.devtools.loopback import Fault

    data = os.urandom(4 << 20)
    make_zoo(zoo, server, {"slow": {"slow.bin": data}, "fast": {"fast.bin": b"fast"}})
    # ~6.4 s in all: it is interrupted long before, even by a test descheduled for a few seconds
    server.fault("slow/slow.bin", Fault(chunk_size=64 << 10, chunk_delay=0.1))
    dest = tmp_path / "mirror"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo),
                             "--to", str(dest), "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: list(dest.glob("public/slow/.slow.bin.*.part")), "the sync's temporary file", timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("modelzoo-mirror: error: interrupted")
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]
    assert not (dest / "public/slow/slow.bin").exists()


@pytest.mark.parametrize("link", ["slow", "silent"])
def test_ctrl_c_ends_a_sync_within_the_grace_whatever_the_link(zoo, server, tmp_path, link):
    """The workers get mirror.CANCEL_GRACE (1 s) to notice Ctrl-C; then the run ends without them.
    It used to wait for a full 1 MiB read on a slow link (64 KB every 0.5 s: up to 8 s) and, on a
    silent one, for the read timeout (60 s), because the interpreter joined the pool's threads."""
    from modelzoo.devtools.loopback import Fault

    data = os.urandom(4 << 20)
    make_zoo(zoo, server, {"slow": {"slow.bin": data}})
    server.fault("slow/slow.bin", Fault(chunk_size=64 << 10, chunk_delay=0.5) if link == "slow"
                 else Fault(stall_after=64 << 10, stall_seconds=30))
    dest = tmp_path / "mirror"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo),
                             "--to", str(dest), "--all"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: server.requests and list(dest.glob("public/slow/.slow.bin.*.part")), "the download")
    if link == "silent":  # (its first 64 KB come at once)
        _wait_for(lambda: time.monotonic() - server.requests[-1].time > 0.3, "the stall")
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelzoo-mirror: error: interrupted"), err
    assert not [p for p in dest.rglob("*") if p.is_file()], list(dest.rglob("*"))
    # Not a speed test: a bound that a loaded machine keeps (it takes about 0.6 s and 1.1 s) and
    # the old code missed by far (about 7.5 s and 30 s).
    assert took < 3.5, took


# ----------------------------------------------------------------------------- nginx and squid

def test_downloader_reads_a_synced_mirror_served_by_nginx(zoo, server, tmp_path):
    make_zoo(zoo, server, MODELS)
    dest = tmp_path / "mirror"
    assert sync(zoo, dest, "--all").returncode == 0
    for yml in zoo.glob("public/*/model.yml"):  # the sources are gone; only the mirror has the files
        yml.write_text(yml.read_text().replace(server.base_url, DEAD))
    out = tmp_path / "out"
    with Nginx(dest) as web:
        result = run_tool("downloader", "--models_dir", zoo, "--all", "-o", out, "--mirror", web.url)
        log = web.access_log.read_text()
    assert result.returncode == 0, result.stderr
    for m, files in MODELS.items():
        for f, data in files.items():
            assert (out / "public" / m / f).read_bytes() == data
            assert f"GET /public/{m}/{f} HTTP/1.1\" 200" in log


def test_sync_and_download_through_squid(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"], "beta": MODELS["beta"]})
    dest, out = tmp_path / "mirror", tmp_path / "out"
    with Squid() as proxy:
        env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "NO_PROXY": "", "no_proxy": ""}
        result = sync(zoo, dest, "--all", env=env)
        assert result.returncode == 0, result.stderr
        result = run_tool("downloader", "--models_dir", zoo, "--name", "alpha", "-o", out, env=env)
        assert result.returncode == 0, result.stderr
        # squid writes its access log line when the request is done, maybe after the client has its bytes
        _wait_for(lambda: "\n".join(proxy.access_log_lines()).count(f"GET {server.url('alpha/alpha.pb')}") == 2,
                  "squid's access log line for the download")
        log = "\n".join(proxy.access_log_lines())
    assert (dest / "public/beta/beta.onnx").read_bytes() == MODELS["beta"]["beta.onnx"]
    assert (out / "public/alpha/alpha.pb").read_bytes() == MODELS["alpha"]["alpha.pb"]
    for path in ("alpha/alpha.pb", "beta/beta.onnx", "beta/extra/beta.json"):
        assert f"GET {server.url(path)}" in log, log
    assert log.count(f"GET {server.url('alpha/alpha.pb')}") == 2  # the sync's and the download's


def test_a_proxy_that_is_down_is_one_clear_error(zoo, server, tmp_path, refused_port):
    make_zoo(zoo, server, MODELS)
    down = f"http://127.0.0.1:{refused_port}"
    env = {"HTTP_PROXY": down, "http_proxy": down, "NO_PROXY": "", "no_proxy": ""}
    result = sync(zoo, tmp_path / "mirror", "--all", env=env)
    assert result.returncode == 1
    assert one_error_line(result) == (f"modelzoo-mirror: error: proxy {down} (for {server.base_url}) does not "
                                      "answer: Connection refused")
    assert server.count() == 0 and not (tmp_path / "mirror").exists()
    # NO_PROXY naming the source: the proxy is not used, so it does not matter that it is down
    env = {**env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    result = sync(zoo, tmp_path / "mirror", "--all", env=env)
    assert result.returncode == 0, result.stderr


def test_base_install_does_not_import_boto3():
    """Folders, http(s) and file:// mirrors need no boto3; only an s3:// URL imports it."""
    code = ("import sys\n"
            "import modelzoo.cli.mirror, modelzoo.cli.downloader, modelzoo.sync.pipeline, modelzoo.transport.fetch\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore') or m in ('modelzoo.transport.s3', 'modelzoo.mirror.s3_store')], "
            "sorted(sys.modules)\n"
            "import modelzoo.transport.fetch as f\n"
            "opener = f.opener_for('s3')  # a library caller needs no import for its side effect\n"
            "import modelzoo.transport.s3\n"
            "assert opener is modelzoo.transport.s3.open_s3\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args, words", [
    (("sync", "--all"), "the following arguments are required: --to"),
    (("sync", "--all", "--to", "ftp://x/y"), "expected a folder, a file:// URL or s3://bucket/prefix"),
    (("sync", "--all", "--to", "d", "--mirror", "ftp://x"), "--mirror 'ftp://x': expected"),
    (("verify", "--at", "d"), "give exactly one of --name, --list, --all"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
])
def test_usage_errors(zoo, server, tmp_path, args, words):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    result = run_tool("mirror", *args, "--models_dir", zoo, cwd=tmp_path) if args[0] in ("sync", "verify") else \
        run_tool("mirror", *args, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    assert words in result.stderr, result.stderr
    assert result.returncode == 2
    assert not (tmp_path / "d").exists()


def test_not_a_manifest_is_refused(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    dest = tmp_path / "mirror"
    dest.mkdir()
    (dest / MANIFEST).write_text("{}")
    result = sync(zoo, dest, "--all")
    assert result.returncode == 1
    assert one_error_line(result) == f"modelzoo-mirror: error: {dest / MANIFEST}: not a modelzoo-mirror/1 manifest"


def test_read_only_or_full_destination_is_one_clear_error(zoo, server, tmpfs):
    models = {f"m{i}": {f"m{i}.bin": os.urandom(300_000)} for i in range(6)}
    make_zoo(zoo, server, models)
    readonly = tmpfs(readonly=True)
    result = sync(zoo, readonly, "--all", "-j", "3")
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("modelzoo-mirror: error: cannot ") and str(readonly) in line and "Read-only" in line, line
    subprocess.run(["umount", "-l", str(readonly)], check=True)

    full = tmpfs(size="1m")  # room for three of the six files
    result = sync(zoo, full, "--all", "-j", "2", "--no_space_check")  # (the writes themselves meet the full disk)
    assert result.returncode == 1
    line = one_error_line(result)
    assert line.startswith("modelzoo-mirror: error: no space left on device"), line
    assert not [p for p in full.rglob("*") if p.name.endswith(".part")]
    for rel, entry in manifest(full)["files"].items() if (full / MANIFEST).exists() else ():
        assert sha384((full / rel).read_bytes()) == entry["sha384"]


def test_s3_without_boto3_is_one_line_naming_the_extra(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    for tool, args in (("downloader", ["--name", "alpha", "-o", str(tmp_path / "o"), "--mirror", "s3://b/p"]),
                       ("mirror", ["sync", "--name", "alpha", "--to", "s3://b/p"])):
        code = ("import runpy, sys\n"
                "sys.modules['boto3'] = None  # as if the [s3] extra were not installed\n"
                f"sys.argv = [{str(SCRIPTS / (tool + '.py'))!r}, *sys.argv[1:]]\n"
                "runpy.run_path(sys.argv[0], run_name='__main__')\n")
        result = subprocess.run([sys.executable, "-c", code, *args, "--models_dir", str(zoo)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, result.stderr
        assert one_error_line(result).endswith("error: s3:// needs boto3: pip install 'modelzoo[s3]'")


def test_a_big_file_over_several_connections(zoo, server, tmp_path):
    data = os.urandom(40 << 20)
    make_zoo(zoo, server, {"big": {"big.bin": data}})
    # a slow server: pieces are used only where one connection would take long
    from modelzoo.devtools.loopback import Fault

    server.fault("/big/big.bin", Fault(chunk_size=256 * 1024, chunk_delay=0.02))
    result = sync(zoo, tmp_path / "mirror", "--all", "--connections", "4")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mirror/public/big/big.bin").read_bytes() == data
    ranges = [r.headers.get("Range") for r in server.requests if r.path == "/big/big.bin"]
    assert len([r for r in ranges if r and not r.endswith("-")]) >= 2, ranges  # pieces: closed ranges


def test_sync_json_events(zoo, server, tmp_path):
    make_zoo(zoo, server, {"alpha": MODELS["alpha"]})
    result = sync(zoo, tmp_path / "mirror", "--all", "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    size = len(MODELS["alpha"]["alpha.pb"])
    assert events[:2] == [
        {"$type": "mirror_file_begin", "model": "alpha", "path": "public/alpha/alpha.pb", "size": size},
        {"$type": "mirror_file_end", "model": "alpha", "path": "public/alpha/alpha.pb", "size": size,
         "successful": True, "how": "fetched"}]
    assert events[2] == {"$type": "mirror_sync_end", "fetched": 1, "fetched_bytes": size, "adopted": 0, "present": 0,
                         "deleted": 0, "failed": [], "manifest_written": True, "upstream_requests": 1}
    assert len(events) == 3
