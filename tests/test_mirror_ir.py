"""Converted IR in mirrors: `mirror.py sync --ir` publishes it (through the IR cache), and
`converter.py --mirror` fetches and verifies it instead of converting, falling back to a local
conversion, said in one line, for a mirror without the key, with a wrong byte, a lying manifest
or no answer. Real parts: the loopback HTTP server, real folders, a real SeaweedFS, the real
converter with the ovc backend on a one-convolution graph.

Runs in both CI environments: in `.venv-ovc` (the newest OpenVINO alone, no TensorFlow) it is
the "machine without TensorFlow" that reads IR from a mirror."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCRIPTS, _wait_for, one_error_line, run_tool, write_model
from ovc_reference import tiny_pb

from modelzoo.devtools.loopback import LoopbackServer
from modelzoo.mirror.stores import MANIFEST

ARGS = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]
INFO = [{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}]


def tiny_model(zoo: Path, server, name: str, seed: int = 0, args: list[str] = ARGS) -> bytes:
    data = tiny_pb(seed).read_bytes()
    url = server.add(f"{name}/tiny.pb", data)
    write_model(zoo, name, [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                model_optimizer_args=args, input_info=INFO)
    return data


def sync_ir(zoo: Path, dest: str, cache: Path, log: Path, *extra: str, env: dict | None = None):
    return run_tool("mirror", "sync", "--models_dir", zoo, "--to", dest, "--cache_dir", cache, "--ir", "FP16,FP32",
                    "--backend", "ovc", *extra, env={"MODELZOO_CONVERSION_LOG": str(log), **(env or {})}, timeout=600)


def convert_from(zoo: Path, name: str, dl: Path, out: Path, log: Path, *mirrors: str, env: dict | None = None,
                 extra: tuple[str, ...] = ()):
    args = [a for m in mirrors for a in ("--mirror", m)] + list(extra)
    return run_tool("converter", "--models_dir", zoo, "--name", name, "-d", dl, "-o", out, "--backend", "ovc",
                    *args, env={"MODELZOO_CONVERSION_LOG": str(log), **(env or {})}, timeout=600)


def count(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def downloaded(tmp_path: Path, name: str, data: bytes) -> Path:
    dl = tmp_path / "dl"
    (dl / "public" / name).mkdir(parents=True, exist_ok=True)
    (dl / "public" / name / "tiny.pb").write_bytes(data)
    return dl


@pytest.fixture
def published(tmp_path, zoo, server):
    """A folder mirror with tiny-a's files and IR; the key and the IR's files."""
    data = tiny_model(zoo, server, "tiny-a")
    dest, log = tmp_path / "mirror", tmp_path / "sync.log"
    result = sync_ir(zoo, str(dest), tmp_path / "cache", log, "--name", "tiny-a")
    assert result.returncode == 0, result.stderr
    assert count(log) == 1
    [key] = [p.name for p in (dest / "ir").iterdir()]
    ir = dest / "ir" / key / "public/tiny-a"
    return {"dest": dest, "key": key, "ir": files(ir), "data": data, "zoo": zoo}


def test_sync_ir_publishes_verified_ir_with_its_key_and_tools(published):
    dest, key = published["dest"], published["key"]
    assert sorted(published["ir"]) == ["FP16/tiny-a.bin", "FP16/tiny-a.xml", "FP32/tiny-a.bin", "FP32/tiny-a.xml"]
    entries = json.loads((dest / MANIFEST).read_text())["files"]
    assert (dest / "public/tiny-a/tiny.pb").read_bytes() == published["data"]  # the model's files too
    for rel, data in published["ir"].items():
        entry = entries[f"ir/{key}/public/tiny-a/{rel}"]
        assert entry["ir_key"] == key and entry["tools"].startswith("ovc ") and entry["model"] == "tiny-a"
        assert entry["size"] == len(data) and entry["sha384"] == __import__("hashlib").sha384(data).hexdigest()


def test_a_second_sync_converts_and_publishes_nothing(published, tmp_path):
    log = tmp_path / "again.log"
    result = sync_ir(published["zoo"], str(published["dest"]), tmp_path / "cache", log, "--name", "tiny-a")
    assert result.returncode == 0, result.stderr
    assert count(log) == 0 and "0 published" in result.stdout


@pytest.mark.parametrize("how", ["folder", "file", "http"])
def test_converter_mirror_places_the_ir_without_converting(published, tmp_path, how):
    dest = published["dest"]
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    with LoopbackServer(root=dest) as web:
        url = {"folder": str(dest), "file": dest.as_uri(), "http": web.base_url}[how]
        result = convert_from(published["zoo"], "tiny-a", dl, out, log, url)
    assert result.returncode == 0, result.stderr
    assert count(log) == 0 and "fetched from the mirror" in result.stdout
    assert result.stderr == ""
    assert files(out / "public/tiny-a") == published["ir"]


def test_a_mirror_without_the_key_means_a_local_conversion_said_once(published, tmp_path):
    zoo = published["zoo"]
    yml = zoo / "public/tiny-a/model.yml"
    yml.write_text(yml.read_text().replace("x[10,20,30]", "x[10,20,31]"))  # another conversion: another key
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    result = convert_from(zoo, "tiny-a", dl, out, log, str(published["dest"]))
    assert result.returncode == 0, result.stderr
    assert count(log) == 1
    [line] = result.stderr.splitlines()
    assert "no IR for key" in line and "converting locally" in line


def _local_ir(published, tmp_path) -> dict[str, bytes]:
    dl, out = downloaded(tmp_path / "local", "tiny-a", published["data"]), tmp_path / "local-out"
    assert convert_from(published["zoo"], "tiny-a", dl, out, tmp_path / "local.log").returncode == 0
    return files(out / "public/tiny-a")


@pytest.mark.parametrize("damage", ["byte", "size", "lying key", "not json", "down"])
def test_a_hostile_or_broken_mirror_falls_back_to_converting(published, tmp_path, damage):
    dest, key = published["dest"], published["key"]
    url = str(dest)
    target = dest / "ir" / key / "public/tiny-a/FP32/tiny-a.bin"
    if damage == "byte":
        data = bytearray(target.read_bytes())
        data[-1] ^= 1
        target.write_bytes(bytes(data))
    elif damage == "size":
        target.write_bytes(target.read_bytes() + b"\0")
    elif damage == "lying key":  # the entry says it is another key's IR than the path it is at
        manifest = json.loads((dest / MANIFEST).read_text())
        manifest["files"][f"ir/{key}/public/tiny-a/FP32/tiny-a.bin"]["ir_key"] = "0" * 96
        (dest / MANIFEST).write_text(json.dumps(manifest))
    elif damage == "not json":
        (dest / MANIFEST).write_text("{")
    else:
        url = "http://127.0.0.1:9"
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    result = convert_from(published["zoo"], "tiny-a", dl, out, log, url)
    assert result.returncode == 0, result.stderr
    assert count(log) == 1
    [line] = result.stderr.splitlines()
    assert "converting locally" in line and "Traceback" not in line
    assert files(out / "public/tiny-a") == _local_ir(published, tmp_path)
    assert not list(out.rglob(".*"))


def test_sync_ir_delete_removes_ir_no_selected_model_needs(published, tmp_path, server):
    zoo, dest = published["zoo"], published["dest"]
    tiny_model(zoo, server, "tiny-b", seed=1)
    cache, log = tmp_path / "cache", tmp_path / "sync2.log"
    assert sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a,tiny-b").returncode == 0
    assert count(log) == 1  # tiny-a's came from the cache
    entries = json.loads((dest / MANIFEST).read_text())["files"]
    assert {e["model"] for r, e in entries.items() if r.startswith("ir/")} == {"tiny-a", "tiny-b"}
    result = sync_ir(zoo, str(dest), cache, log, "--name", "tiny-a", "--delete")
    assert result.returncode == 0, result.stderr
    entries = json.loads((dest / MANIFEST).read_text())["files"]
    assert {e["model"] for r, e in entries.items() if r.startswith("ir/")} == {"tiny-a"}
    assert not list(dest.glob("ir/*/public/tiny-b")) and (dest / "ir" / published["key"] / "public/tiny-a").is_dir()


def test_sync_ir_lists_the_ir_in_changes(tmp_path, zoo, server):
    tiny_model(zoo, server, "tiny-a")
    changes = tmp_path / "changes.lst"
    result = sync_ir(zoo, str(tmp_path / "m"), tmp_path / "cache", tmp_path / "s.log", "--name", "tiny-a",
                     "--changes", changes, "--progress_format", "json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # every line is an event
    published = [e["path"] for e in events if e["$type"] == "mirror_ir_published"]
    [end] = [e for e in events if e["$type"] == "mirror_ir_end"]
    assert end["published"] == len(published) == 4 and end["failed"] == []
    listed = changes.read_text().splitlines()
    assert "public/tiny-a/tiny.pb" in listed
    assert len([x for x in listed if x.startswith("ir/")]) == 4
    assert all((tmp_path / "m" / x).is_file() for x in listed)


def test_sync_ir_needs_a_cache(tmp_path, zoo, server):
    tiny_model(zoo, server, "tiny-a")
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "m", "--ir", "FP16")
    assert result.returncode == 2 and "--cache_dir" in result.stderr
    result = run_tool("mirror", "sync", "--models_dir", zoo, "--all", "--to", tmp_path / "m", "--ir", "INT9",
                      "--cache_dir", tmp_path / "c")
    assert result.returncode == 2 and "INT9" in result.stderr


def test_verify_covers_the_ir(published, tmp_path):
    dest, key = published["dest"], published["key"]
    zoo = published["zoo"]
    clean = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "tiny-a", "--at", dest)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    target = dest / "ir" / key / "public/tiny-a/FP16/tiny-a.bin"
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "tiny-a", "--at", dest)
    assert result.returncode == 1
    assert f"ir/{key}/public/tiny-a/FP16/tiny-a.bin" in result.stdout and "NOT clean" in result.stdout
    shutil.rmtree(dest / "ir" / key / "public/tiny-a/FP32")
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "tiny-a", "--at", dest)
    assert result.returncode == 1 and "missing" in result.stdout
    # --repair converts again (through the cache) and publishes the IR under its key
    result = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "tiny-a", "--at", dest, "--repair",
                      "--cache_dir", tmp_path / "cache2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert files(dest / "ir" / key / "public/tiny-a") == published["ir"]
    clean = run_tool("mirror", "verify", "--models_dir", zoo, "--name", "tiny-a", "--at", dest)
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_sync_ir_to_s3_then_converter_mirror_s3_converts_nothing(tmp_path, zoo, server):
    import uuid

    from modelzoo.devtools.servers import SeaweedS3

    data = tiny_model(zoo, server, "tiny-a")
    with SeaweedS3() as weed:
        bucket = f"ir-{uuid.uuid4().hex[:10]}"
        weed.client().create_bucket(Bucket=bucket)
        dest = f"s3://{bucket}/omz"
        log = tmp_path / "sync.log"
        result = sync_ir(zoo, dest, tmp_path / "cache", log, "--name", "tiny-a", env=weed.env())
        assert result.returncode == 0, result.stderr
        assert count(log) == 1
        keys = [o["Key"] for o in weed.client().list_objects_v2(Bucket=bucket)["Contents"]]
        ir_keys = [k for k in keys if k.startswith("omz/ir/")]
        assert len(ir_keys) == 4
        dl, out, clog = downloaded(tmp_path, "tiny-a", data), tmp_path / "out", tmp_path / "conv.log"
        result = convert_from(zoo, "tiny-a", dl, out, clog, dest, env=weed.env(weed.reader))
        assert result.returncode == 0, result.stderr
        assert count(clog) == 0 and "fetched from the mirror" in result.stdout
        client = weed.client()
        for k in ir_keys:
            rel = k.split("/public/tiny-a/", 1)[1]
            assert (out / "public/tiny-a" / rel).read_bytes() == client.get_object(Bucket=bucket, Key=k)["Body"].read()


def test_print_ir_lists_which_models_have_ir_for_which_openvino(published, tmp_path):
    dest, key = published["dest"], published["key"]
    result = run_tool("info_dumper", "--print_ir", dest)
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["model"] == "tiny-a" and row["key"] == key and row["precisions"] == ["FP16", "FP32"]
    assert row["subdirectory"] == "public/tiny-a" and row["files"] == 4
    assert row["bytes"] == sum(len(d) for d in published["ir"].values())
    import openvino

    assert row["tools"] == "ovc " + openvino.__version__.split("-")[0]
    assert json.loads(run_tool("info_dumper", "--print_ir", dest, "--name", "other*").stdout) == []
    down = run_tool("info_dumper", "--print_ir", "http://127.0.0.1:9")
    assert down.returncode == 1 and "127.0.0.1:9" in one_error_line(down)


def test_a_consistent_manifest_naming_truncated_ir_is_not_used(published, tmp_path):
    """A writer of the mirror replaced a .bin by a shorter one and updated the manifest to match:
    every byte verifies against the manifest, but the IR is not whole; it is converted here."""
    import hashlib

    dest, key = published["dest"], published["key"]
    rel = f"ir/{key}/public/tiny-a/FP32/tiny-a.bin"
    short = (dest / rel).read_bytes()[:16]
    (dest / rel).write_bytes(short)
    manifest = json.loads((dest / MANIFEST).read_text())
    manifest["files"][rel].update(size=len(short), sha384=hashlib.sha384(short).hexdigest())
    (dest / MANIFEST).write_text(json.dumps(manifest))
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    result = convert_from(published["zoo"], "tiny-a", dl, out, log, str(dest))
    assert result.returncode == 0, result.stderr
    assert count(log) == 1 and "is not this model's" in one_error_line(result)
    assert files(out / "public/tiny-a") == published["ir"]


def test_ctrl_c_while_a_mirror_has_gone_silent_ends_within_the_grace(published, tmp_path, server):
    """The IR files come side by side in worker threads; Ctrl-C while one waits on a mirror that
    has gone silent mid-file ends the run within the grace (they are daemon threads), not when
    the read times out (a thread pool's threads are joined at exit), and places nothing."""
    from modelzoo.devtools.loopback import Fault

    dest, key = published["dest"], published["key"]
    for path in dest.rglob("*"):
        if path.is_file():
            server.add(path.relative_to(dest).as_posix(), path.read_bytes())
    stalled = f"ir/{key}/public/tiny-a/FP32/tiny-a.bin"
    size = (dest / stalled).stat().st_size
    server.fault(stalled, Fault(stall_after=size // 2, stall_seconds=60))
    dl, out = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(published["zoo"]),
                             "--name", "tiny-a", "-d", str(dl), "-o", str(out), "--backend", "ovc",
                             "--mirror", server.base_url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: any(r.path.endswith(stalled) for r in server.requests), "the stalled file's request")
        time.sleep(0.5)  # (its first half comes at once; then silence)
        assert proc.poll() is None, "the converter ended before the stall"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=90)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not [p for p in out.rglob("*") if p.is_file()]
    # Not a speed test: a bound a loaded machine keeps; the old code waited for the 60 s read timeout.
    assert took < 10, took


def _serve(server, dest: Path) -> None:
    for path in dest.rglob("*"):
        if path.is_file():
            server.add(path.relative_to(dest).as_posix(), path.read_bytes())


@pytest.mark.parametrize("tool", ["converter", "info_dumper"])
def test_offline_opens_no_connection_to_an_http_ir_mirror(published, tmp_path, server, tool):
    """Offline, an http(s) IR mirror is refused before any connection: the converter says so in
    one line and converts here, info_dumper --print_ir says so; the server accepts nothing."""
    _serve(server, published["dest"])
    before = server.connections
    if tool == "converter":
        dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
        result = convert_from(published["zoo"], "tiny-a", dl, out, log, server.base_url, env={"MODELZOO_OFFLINE": "1"})
        assert result.returncode == 0, result.stderr
        line = one_error_line(result)
        assert "not fetched: offline" in line and "converting locally" in line, line
        assert count(log) == 1 and files(out / "public/tiny-a") == _local_ir(published, tmp_path)
    else:
        result = run_tool("info_dumper", "--print_ir", server.base_url, env={"MODELZOO_OFFLINE": "1"})
        assert result.returncode != 0
        assert "not fetched: offline" in one_error_line(result)
    assert server.connections == before


def test_a_trickling_ir_mirror_is_given_up_and_the_ir_made_here(published, tmp_path, server):
    """A mirror that sends the manifest, then the IR a byte at a time, keeps every read timeout
    alive; --mirror_min_speed gives it up after its grace (30 s), and the IR is made here."""
    from modelzoo.devtools.loopback import Fault

    dest, key = published["dest"], published["key"]
    _serve(server, dest)
    for rel in published["ir"]:
        server.fault(f"ir/{key}/public/tiny-a/{rel}", Fault(chunk_size=1, chunk_delay=1.5))
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    started = time.monotonic()
    result = convert_from(published["zoo"], "tiny-a", dl, out, log, server.base_url,
                          extra=("--mirror_min_speed", "100K"))
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    line = one_error_line(result)
    assert "slower than" in line or "not in within" in line, line
    assert "converting locally" in line and count(log) == 1
    assert files(out / "public/tiny-a") == _local_ir(published, tmp_path)
    assert took < 300, took  # a hang guard, not a speed test: the trickle alone would take hours


def test_a_bad_min_speed_is_one_line(published, tmp_path):
    dl, out, log = downloaded(tmp_path, "tiny-a", published["data"]), tmp_path / "out", tmp_path / "conv.log"
    result = convert_from(published["zoo"], "tiny-a", dl, out, log, str(published["dest"]),
                          extra=("--mirror_min_speed", "fast"))
    assert result.returncode == 2 and "--mirror_min_speed" in one_error_line(result)
    assert not out.exists()
