"""Converted IR by conversion key (`converter.py --cache_dir`), through the real converter CLI and
the real OpenVINO (ovc backend, a one-convolution TF graph, so each conversion is quick).
Conversions are counted by the lines the converter appends to $MODELZOO_CONVERSION_LOG, one per
real backend call.

Runs in both CI environments (with TensorFlow and mo, and the newest OpenVINO alone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import SCRIPTS, one_error_line, run_tool
from test_ovc import tiny_zoo

from modelzoo.store import ir_cache

MODEL = "public/tiny-c"
PRE = ["--input_model=$dl_dir/tiny.pb", "--output=y", "--mean_values=x[10,20,30]"]


def setup(tmp_path: Path, zoo: Path, seed: int = 0, mo_args: list[str] = PRE) -> dict:
    dl, log = tmp_path / "dl", tmp_path / "conversions.log"
    tiny_zoo(zoo, dl, "tiny-c", seed, mo_args, input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    return {"zoo": zoo, "dl": dl, "cache": tmp_path / "cache", "log": log}


def convert(w: dict, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_tool("converter", "--models_dir", w["zoo"], "--name", "tiny-c", "-d", w["dl"], "-o", out,
                    "--backend", "ovc", "--cache_dir", w["cache"], *extra,
                    env={"MODELZOO_CONVERSION_LOG": str(w["log"])})


def conversions(w: dict) -> int:
    return len(w["log"].read_text().splitlines()) if w["log"].exists() else 0


def ir_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def key_line(result: subprocess.CompletedProcess) -> str:
    [line] = [x for x in result.stdout.splitlines() if x.startswith("Conversion key: ")]
    return line.split(": ", 1)[1]


def dry_key(w: dict, *extra: str) -> str:
    result = run_tool("converter", "--models_dir", w["zoo"], "--name", "tiny-c", "-d", w["dl"], "--backend", "ovc",
                      "--dry_run", *extra)
    assert result.returncode == 0, result.stderr
    return key_line(result)


def test_a_second_conversion_is_placed_from_the_cache_byte_identical(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    first = convert(w, tmp_path / "a")
    assert first.returncode == 0, first.stderr
    assert conversions(w) == 1 and "wrote " in first.stdout
    second = convert(w, tmp_path / "b")
    assert second.returncode == 0, second.stderr
    assert conversions(w) == 1, "the second run converted again"
    assert f"cached {tmp_path / 'b' / MODEL / 'FP16/tiny-c'}.xml and .bin" in second.stdout
    a, b = ir_files(tmp_path / "a" / MODEL), ir_files(tmp_path / "b" / MODEL)
    assert sorted(a) == ["FP16/tiny-c.bin", "FP16/tiny-c.xml", "FP32/tiny-c.bin", "FP32/tiny-c.xml"]
    assert a == b
    key = key_line(second)
    assert key == key_line(first) == dry_key(w)
    # the output files are hard links to read-only entries of the cache's own namespace
    xml = tmp_path / "b" / MODEL / "FP32/tiny-c.xml"
    assert xml.stat().st_nlink >= 2  # (the 'or root' that followed made this line always true as root)
    assert os.geteuid() == 0 or not os.access(xml, os.W_OK)
    assert oct(xml.stat().st_mode & 0o777) == "0o444"
    entry = json.loads((w["cache"] / "ir/keys" / key[:2] / f"{key[2:]}.json").read_text())
    assert entry["key"] == key and entry["record"]["backend"] == "ovc"
    assert {f["path"] for f in entry["files"]} == set(a)
    assert not (w["cache"] / "sha384").exists()  # downloads' blobs and IR do not mix


def test_mean_value_precisions_model_file_and_backend_each_change_the_key(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    base = dry_key(w)
    assert dry_key(w) == base  # the same conversion, the same key
    assert dry_key(w, "--precisions", "FP16") != base
    assert dry_key(w, "--add_mo_arg=--scale_values=x[2,2,2]") != base
    other = setup(tmp_path / "o", zoo, mo_args=[*PRE[:2], "--mean_values=x[10,20,31]"])
    assert dry_key(other) != base
    assert dry_key(setup(tmp_path / "s", zoo, seed=7)) != base  # another model file, same path
    # where the model lives does not matter, only what it holds
    moved = setup(tmp_path / "m", zoo)
    assert moved["dl"] != w["dl"] and dry_key(moved) == base


def test_backend_and_its_version_are_in_the_key(tmp_path):
    pb = tmp_path / "m.pb"
    pb.write_bytes(b"graph")
    args = [f"--input_model={pb}", "--mean_values=x[1,2,3]"]
    record = ir_cache.conversion_record("ovc", "2024.6.0", args, ["FP32", "FP16"])
    assert record["arguments"][0] == "--input_model=sha384:" + ir_cache.file_sha384(pb)
    key = ir_cache.key_of(record)
    assert ir_cache.key_of(ir_cache.conversion_record("ovc", "2024.6.0", args, ["FP16", "FP32"])) == key
    assert ir_cache.key_of(ir_cache.conversion_record("ovc", "2025.0.0", args, ["FP32", "FP16"])) != key
    assert ir_cache.key_of(ir_cache.conversion_record("mo", "2024.6.0", args, ["FP32", "FP16"])) != key
    # an INT8 record extends the conversion's (what quantizer.py will add)
    int8 = {**record, "quantization": {"nncf": "2.14.0", "dataset": ir_cache.files_digest([pb])}}
    assert ir_cache.key_of(int8) != key


def test_a_corrupted_entry_is_discarded_and_converted_again(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    assert convert(w, tmp_path / "a").returncode == 0
    good = ir_files(tmp_path / "a" / MODEL)  # (a's files are the blobs: read them before the damage)
    key = dry_key(w)
    entry = json.loads((w["cache"] / "ir/keys" / key[:2] / f"{key[2:]}.json").read_text())
    fp32 = next(f for f in entry["files"] if f["path"] == "FP32/tiny-c.bin")
    blob = w["cache"] / "ir/sha384" / fp32["sha384"][:2] / fp32["sha384"][2:]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))  # same size; its stat record no longer matches
    result = convert(w, tmp_path / "b")
    assert result.returncode == 0, result.stderr
    assert conversions(w) == 2 and "wrote " in result.stdout
    assert ir_files(tmp_path / "b" / MODEL) == good
    # the entry is whole again: a third run is a hit
    third = convert(w, tmp_path / "c")
    assert third.returncode == 0 and conversions(w) == 2 and ir_files(tmp_path / "c" / MODEL) == good


def test_an_entry_that_lies_about_its_files_is_not_used(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    assert convert(w, tmp_path / "a").returncode == 0
    key = dry_key(w)
    path = w["cache"] / "ir/keys" / key[:2] / f"{key[2:]}.json"
    entry = json.loads(path.read_text())
    for bad in ({"path": "../../x", "size": 1, "sha384": "0" * 96}, {"path": "FP32/tiny-c.bin", "size": -1}):
        path.write_text(json.dumps({**entry, "files": [bad]}))
        result = convert(w, tmp_path / f"o{len(bad)}")
        assert result.returncode == 0, result.stderr
        assert "wrote " in result.stdout
    assert conversions(w) == 3
    assert not (tmp_path / "x").exists()


def test_two_runs_with_one_key_at_once_convert_once(tmp_path, zoo):
    w = setup(tmp_path, zoo)
    env = {**os.environ, "MODELZOO_CONVERSION_LOG": str(w["log"]), "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(zoo), "--name",
                               "tiny-c", "-d", str(w["dl"]), "-o", str(tmp_path / f"out{i}"), "--backend", "ovc",
                               "--cache_dir", str(w["cache"])], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert conversions(w) == 1
    assert sorted("cached " in o for o, _ in outs) == [False, True]
    assert ir_files(tmp_path / "out0" / MODEL) == ir_files(tmp_path / "out1" / MODEL)


def test_a_full_cache_disk_fails_in_one_line_and_leaves_no_entry(tmp_path, zoo, tmpfs):
    w = setup(tmp_path, zoo)
    w["cache"] = tmpfs("200k")
    with open(w["cache"] / "filler", "wb", buffering=0) as f:  # every block taken
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    result = convert(w, tmp_path / "a")
    assert result.returncode == 1
    assert "no space left on device" in one_error_line(result.__class__(
        result.args, result.returncode, result.stdout, "\n".join(result.stderr.splitlines()[:-1])))
    assert not list((w["cache"] / "ir").rglob("*.json"))
    assert not (tmp_path / "a" / MODEL / "FP32").exists()


def test_ctrl_c_while_adding_leaves_no_entry_and_no_ir(tmp_path, zoo):
    """The run is stopped while it adds its IR to the cache: it waits on the lock of the last
    blob (held here, as another process adding the same file would hold it) after adding the
    others. Nothing may be left that a later run could take for a whole entry."""
    import signal
    import time

    from filelock import FileLock

    w = setup(tmp_path, zoo)
    first = {**w, "cache": tmp_path / "other-cache"}
    assert convert(first, tmp_path / "a").returncode == 0  # the same conversion's files, to know their SHA-384
    key = dry_key(w)
    entry = json.loads((first["cache"] / "ir/keys" / key[:2] / f"{key[2:]}.json").read_text())
    last = sorted(entry["files"], key=lambda f: f["path"])[-1]["sha384"]
    store = w["cache"] / "ir/sha384"
    (store / last[:2]).mkdir(parents=True)
    held = FileLock(str(store / last[:2] / f"{last[2:]}.lock"))
    held.acquire()
    out = tmp_path / "b"
    env = {**os.environ, "MODELZOO_CONVERSION_LOG": str(w["log"]), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "converter.py"), "--models_dir", str(zoo), "--name",
                             "tiny-c", "-d", str(w["dl"]), "-o", str(out), "--backend", "ovc", "--cache_dir",
                             str(w["cache"])], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len([p for p in store.glob("*/*") if "." not in p.name]) < 3:  # three blobs added, the fourth waits
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        held.release()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list((w["cache"] / "ir").rglob("*.json"))  # no entry
    assert not out.exists()  # no IR, no staging folder, not even the folders made for them
    assert not [p for p in store.rglob("*") if p.name.endswith((".incomplete", ".part", ".tmp"))]
    # the next run converts again and leaves a whole entry
    again = convert(w, tmp_path / "c")
    assert again.returncode == 0, again.stderr
    assert conversions(w) == 3 and ir_files(tmp_path / "c" / MODEL) == ir_files(tmp_path / "a" / MODEL)
    assert convert(w, tmp_path / "d").returncode == 0 and conversions(w) == 3


def test_a_download_cache_link_is_keyed_by_its_blob_and_an_edit_is_seen(tmp_path, zoo, server):
    """A model file that is a hard link to a verified download-cache blob is keyed by the blob's
    SHA-384 without being read; once edited (the blob's stat record no longer matches), it is
    hashed again, so the key follows the content."""
    from ovc_reference import tiny_pb

    from conftest import write_model

    data = tiny_pb(0).read_bytes()
    url = server.add("tiny-c/tiny.pb", data)
    write_model(zoo, "tiny-c", [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                model_optimizer_args=PRE, input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    cache, dl = tmp_path / "cache", tmp_path / "dl"
    assert run_tool("downloader", "--models_dir", zoo, "--name", "tiny-c", "-o", dl, "--cache_dir", cache).returncode == 0
    pb = dl / MODEL / "tiny.pb"
    assert pb.stat().st_nlink == 2  # the blob and this link
    w = {"zoo": zoo, "dl": dl}
    linked = dry_key(w, "--cache_dir", cache)
    plain = setup(tmp_path / "plain", zoo)  # the same bytes, a plain file (rewrites the same descriptor's model)
    write_model(zoo, "tiny-c", [{"name": "tiny.pb", "data": data, "url": url}], framework="tf",
                model_optimizer_args=PRE, input_info=[{"name": "x", "shape": [1, 8, 8, 3], "layout": "NHWC"}])
    assert dry_key(plain) == linked == dry_key(w)
    pb.chmod(0o644)
    edited = bytearray(data)
    edited[-1] ^= 1
    pb.write_bytes(bytes(edited))  # through the link: the blob itself changed
    assert dry_key(w, "--cache_dir", cache) != linked
