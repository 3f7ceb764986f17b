"""Quantized IR by its key: `quantizer.py --cache_dir`, `--mirror`, `--dry_run` and `mirror.py sync
--ir FP16-INT8`, through the real command lines, real NNCF and OpenVINO on the rebuilt
retinanet-tf (256x256) and real folders and a loopback HTTP server. NNCF runs are counted by the
lines the quantizer appends to $MODELZOO_QUANTIZATION_LOG (one per call into NNCF); what a warm run
imports is read from Python's own -X importtime report (PYTHONPROFILEIMPORTTIME).

A few images (three) keep each NNCF run short; the cold quantization is made once a session."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCRIPTS, one_error_line, run_tool
from qtools import MODEL, _workdir, coco, coco_folder, rebuilt, rebuilt_ir  # noqa: F401 (fixtures)

from modelzoo.store import ir_cache
from modelzoo.devtools.loopback import LoopbackServer
from modelzoo.mirror.stores import MANIFEST

INT8 = "FP16-INT8"


def ir_dir_copy(folder: Path) -> Path:
    """The rebuilt FP32 IR alone (plain files, not links to any cache) in a folder of its own."""
    ir = folder / "ir"
    shutil.copytree(rebuilt_ir()["ir"] / MODEL / "FP32", ir / MODEL / "FP32")
    return ir


@functools.cache
def images() -> Path:
    """Three of the COCO-format folder's pictures: the calibration set of these tests."""
    folder = _workdir() / "three"
    folder.mkdir()
    for picture in sorted((coco_folder() / "val2017").iterdir())[:3]:
        shutil.copyfile(picture, folder / picture.name)
    return folder


@functools.cache
def annotations() -> Path:
    """The COCO annotations of the three pictures only."""
    doc = json.loads((coco_folder() / "annotations" / "instances_val2017.json").read_text())
    names = {p.name for p in images().iterdir()}
    doc["images"] = [im for im in doc["images"] if im["file_name"] in names]
    ids = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in ids]
    path = _workdir() / "three.json"
    path.write_text(json.dumps(doc))
    return path


def quantize(ir: Path, out: Path, log: Path, *extra: str | Path, env: dict | None = None,
             calibration: tuple = ()) -> subprocess.CompletedProcess:
    return run_tool("quantizer", "--models_dir", rebuilt_ir()["zoo"], "--name", "retinanet-tf", "--ir_dir", ir,
                    "-o", out, *(calibration or ("--images", images())), *extra, timeout=900,
                    env={"MODELZOO_QUANTIZATION_LOG": str(log), **(env or {})})


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def key_line(result: subprocess.CompletedProcess) -> str:
    [line] = [x for x in result.stdout.splitlines() if x.startswith("Conversion key: ")]
    return line.split(": ", 1)[1]


def dry_key(ir: Path, *extra: str | Path, calibration: tuple = ()) -> str:
    result = quantize(ir, ir, Path(os.devnull), "--dry_run", *extra, calibration=calibration)
    assert result.returncode == 0, result.stderr
    assert "(dry run) Quantizing retinanet-tf" in result.stdout
    return key_line(result)


@functools.cache
def cold() -> dict:
    """One quantization through a cache (NNCF runs once), into A."""
    root = _workdir() / "int8-cache"
    ir = ir_dir_copy(root)
    cache, log, out = root / "cache", root / "nncf.log", root / "A"
    result = quantize(ir, out, log, "--cache_dir", cache)
    assert result.returncode == 0, result.stderr
    assert runs(log) == 1 and f"wrote {out / MODEL / INT8 / 'retinanet-tf.xml'}" in result.stdout
    return {"root": root, "ir": ir, "cache": cache, "log": log, "out": out, "result": result,
            "key": key_line(result), "files": files(out / MODEL)}


def entry_of(cache: Path, key: str) -> dict:
    return json.loads((cache / "ir/keys" / key[:2] / f"{key[2:]}.json").read_text())


def test_a_second_quantization_is_placed_from_the_cache_without_nncf(rebuilt, tmp_path):
    c = cold()
    out = tmp_path / "B"
    # Python reports every module it imports (-X importtime): the warm run must import neither
    # NNCF nor OpenVINO (nor numpy) to find and place its IR
    warm = quantize(c["ir"], out, c["log"], "--cache_dir", c["cache"], env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert warm.returncode == 0, warm.stderr
    assert runs(c["log"]) == 1, "the second run called NNCF"
    assert f"cached {out / MODEL / INT8 / 'retinanet-tf.xml'} and .bin ({INT8}), quantization.json beside them" \
        in warm.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in warm.stderr.splitlines()
                if line.startswith("import time:")}
    assert "modelzoo" in imported and not imported & {"nncf", "openvino", "numpy", "cv2"}, sorted(imported)
    assert files(out / MODEL) == c["files"]
    assert sorted(c["files"]) == [f"{INT8}/quantization.json", f"{INT8}/retinanet-tf.bin", f"{INT8}/retinanet-tf.xml"]
    key = key_line(warm)
    assert key == c["key"] == dry_key(c["ir"])
    xml = out / MODEL / INT8 / "retinanet-tf.xml"
    assert xml.stat().st_nlink >= 2 and oct(xml.stat().st_mode & 0o777) == "0o444"  # a link to a read-only blob
    entry = entry_of(c["cache"], key)
    import nncf
    import openvino as ov

    record = entry["record"]
    assert record["quantization"]["nncf"] == nncf.__version__
    assert record["backend"] == "openvino" and record["backend_version"] == ov.__version__.split("-")[0]
    made = json.loads((out / MODEL / INT8 / "quantization.json").read_text())
    # the one digest of a list of files: quantization.json's is the key's
    assert made["key"] == key and made["calibration"]["files_sha384"] == record["quantization"]["calibration"]
    assert record["quantization"]["calibration"] == ir_cache.files_digest(sorted(images().iterdir()), images())
    listed = run_tool("cache", "ls", "--cache_dir", c["cache"], "--json")
    assert listed.returncode == 0, listed.stderr
    [conversion] = [x for x in json.loads(listed.stdout)["conversions"] if x["key"] == key]
    assert conversion["precisions"] == [INT8] and conversion["tools"] == {"nncf": nncf.__version__}


def test_everything_that_decides_the_int8_ir_is_in_its_key(rebuilt, coco, tmp_path):
    c = cold()
    base = dry_key(c["ir"])
    # where the IR and the pictures are does not matter, only what they hold
    moved = shutil.copytree(images(), tmp_path / "moved")
    assert dry_key(ir_dir_copy(tmp_path / "elsewhere"), calibration=("--images", moved)) == base
    changed = {
        "preset": dry_key(c["ir"], "--preset", "mixed"),
        "subset": dry_key(c["ir"], "--subset", "2"),
        "ignored scope": dry_key(c["ir"], "--ignored_scope", "some_node"),
        "precisions": dry_key(c["ir"], "--precisions", "FP16-INT8,FP32-INT8"),
        "annotations": dry_key(c["ir"], calibration=("--images", images(), "--annotations", annotations())),
        "max_drop": dry_key(c["ir"], "--max_drop", "0.05",
                            calibration=("--images", images(), "--annotations", annotations())),
        "max_iterations": dry_key(c["ir"], "--max_drop", "0.05", "--max_iterations", "3",
                                  calibration=("--images", images(), "--annotations", annotations())),
    }
    assert dry_key(c["ir"], "--max_iterations", "3") == base  # (it only matters with --max_drop)
    other = tmp_path / "other-pictures"
    shutil.copytree(images(), other)
    last = sorted(other.iterdir())[-1]
    shutil.copyfile(sorted((coco / "val2017").iterdir())[3], last)  # another picture under the same name
    changed["a calibration picture"] = dry_key(c["ir"], calibration=("--images", other))
    renamed = tmp_path / "renamed"
    shutil.copytree(images(), renamed)
    first = sorted(renamed.iterdir())[0]
    first.rename(renamed / ("z" + first.name))  # the same bytes, another order for NNCF
    changed["the pictures' order"] = dry_key(c["ir"], calibration=("--images", renamed))
    ir = ir_dir_copy(tmp_path / "edited")
    bin_ = ir / MODEL / "FP32/retinanet-tf.bin"
    data = bytearray(bin_.read_bytes())
    data[-1] ^= 1
    bin_.write_bytes(bytes(data))
    changed["the FP32 IR's bytes"] = dry_key(ir)
    assert all(k != base for k in changed.values()), changed
    assert len(set(changed.values())) == len(changed), changed
    # the versions and the accuracy-check.yml: the record's own fields
    record = entry_of(c["cache"], base)["record"]
    assert ir_cache.key_of(record) == base
    for path, value in ((("quantization", "nncf"), "0.0.1"), (("backend_version",), "2020.1.0"),
                        (("quantization", "accuracy_config"), "0" * 96)):
        other_record = json.loads(json.dumps(record))
        where = other_record
        for part in path[:-1]:
            where = where[part]
        where[path[-1]] = value
        assert ir_cache.key_of(other_record) != base
    zoo = tmp_path / "zoo"
    shutil.copytree(rebuilt["zoo"], zoo)
    yml = zoo / MODEL / "accuracy-check.yml"
    yml.write_text(yml.read_text() + "\n# an edit\n")
    result = run_tool("quantizer", "--models_dir", zoo, "--name", "retinanet-tf", "--ir_dir", c["ir"], "--images",
                      images(), "--dry_run")
    assert result.returncode == 0, result.stderr
    assert key_line(result) != base


def test_a_corrupted_entry_is_discarded_and_two_runs_at_once_quantize_once(rebuilt, tmp_path):
    """Two runs at once find the cache's entry with a corrupt blob: it is discarded, one of them
    quantizes (under the key's lock), the other waits and places what it added."""
    c = cold()
    cache = tmp_path / "cache"
    shutil.copytree(c["cache"], cache)  # (copies: the session's cache stays whole)
    log = tmp_path / "nncf.log"
    blob_of = {f["path"]: f["sha384"] for f in entry_of(cache, c["key"])["files"]}
    sha = blob_of[f"{INT8}/retinanet-tf.bin"]
    blob = cache / "ir/sha384" / sha[:2] / sha[2:]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))  # same size; its stat record no longer matches
    env = {**os.environ, "MODELZOO_QUANTIZATION_LOG": str(log), "PYTHONDONTWRITEBYTECODE": "1"}
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "quantizer.py"), "--models_dir", str(rebuilt["zoo"]),
                               "--name", "retinanet-tf", "--ir_dir", str(c["ir"]), "-o", str(tmp_path / f"out{i}"),
                               "--images", str(images()), "--cache_dir", str(cache)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for i in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert runs(log) == 1
    assert sorted("cached " in o for o, _ in outs) == [False, True]
    assert files(tmp_path / "out0" / MODEL) == files(tmp_path / "out1" / MODEL)
    assert sorted(files(tmp_path / "out0" / MODEL)) == sorted(c["files"])
    assert not [p for p in (tmp_path / "out0" / MODEL).iterdir() if p.name.startswith(".")]  # no staging left
    # the entry is whole again: the next run is a hit
    again = quantize(c["ir"], tmp_path / "again", log, "--cache_dir", cache)
    assert again.returncode == 0 and runs(log) == 1 and "cached " in again.stdout
    assert files(tmp_path / "again" / MODEL) == files(tmp_path / "out0" / MODEL)


@functools.cache
def int8_mirror() -> dict:
    """`mirror.py sync --ir FP16,FP32,FP16-INT8` into a folder, through the session's cache (its
    FP32 IR converted from the rebuilt graph there; the INT8 IR found by the same key: no NNCF)."""
    c = cold()
    dest, log = c["root"] / "mirror", c["root"] / "sync.log"
    result = run_tool("mirror", "sync", "--models_dir", rebuilt_ir()["zoo"], "--name", "retinanet-tf", "--to", dest,
                      "--cache_dir", c["cache"], "--ir", f"FP16,FP32,{INT8}", "--backend", "ovc",
                      "--images", images(), "--mirror", rebuilt_ir()["dl"].as_uri(), timeout=900,
                      env={"MODELZOO_QUANTIZATION_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    return {"dest": dest, "result": result, "sync_runs": runs(log)}


def test_sync_ir_int8_publishes_the_cached_quantization_with_its_key(rebuilt):
    c, m = cold(), int8_mirror()
    assert m["sync_runs"] == 0, "the sync quantized again: its key differs from the quantizer's"
    entries = json.loads((m["dest"] / MANIFEST).read_text())["files"]
    mine = {rel: e for rel, e in entries.items() if rel.startswith(f"ir/{c['key']}/")}
    assert sorted(mine) == [f"ir/{c['key']}/{MODEL}/{INT8}/{n}"
                            for n in ("quantization.json", "retinanet-tf.bin", "retinanet-tf.xml")]
    import nncf

    for rel, e in mine.items():
        assert e["ir_key"] == c["key"] and e["tools"].startswith(f"nncf {nncf.__version__} openvino ")
        assert " from ovc " in e["tools"]
        assert (m["dest"] / rel).read_bytes() == c["files"][rel.split(f"{MODEL}/", 1)[1]]
    listed = run_tool("info_dumper", "--print_ir", m["dest"])
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["precisions"] for r in rows) == [["FP16", "FP32"], [INT8]]
    verify = run_tool("mirror", "verify", "--models_dir", rebuilt_ir()["zoo"], "--name", "retinanet-tf", "--at",
                      m["dest"])
    assert verify.returncode == 0 and "clean" in verify.stdout, verify.stdout + verify.stderr


@pytest.mark.parametrize("how", ["folder", "http"])
def test_quantizer_mirror_places_the_int8_ir_without_nncf(rebuilt, tmp_path, how):
    c, m = cold(), int8_mirror()
    log, out = tmp_path / "nncf.log", tmp_path / "out"
    with LoopbackServer(root=m["dest"]) as web:
        url = {"folder": str(m["dest"]), "http": web.base_url}[how]
        result = quantize(ir_dir_copy(tmp_path), out, log, "--mirror", url)  # no cache at all
    assert result.returncode == 0, result.stderr
    assert runs(log) == 0 and f"fetched from the mirror {url}:" in result.stdout
    assert result.stderr == ""
    assert files(out / MODEL) == c["files"]


def test_a_broken_mirror_means_quantizing_locally_said_once(rebuilt, tmp_path):
    c, m = cold(), int8_mirror()
    dest = tmp_path / "mirror"
    shutil.copytree(m["dest"], dest)
    target = dest / "ir" / c["key"] / MODEL / INT8 / "retinanet-tf.bin"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.chmod(0o644)
    target.write_bytes(bytes(data))  # one wrong byte, the size the manifest says
    # a cache that has the key is asked first: the mirror is not even read
    cached = quantize(ir_dir_copy(tmp_path / "c"), tmp_path / "out-c", tmp_path / "c.log", "--mirror", dest,
                      "--cache_dir", c["cache"])
    assert cached.returncode == 0 and runs(tmp_path / "c.log") == 0 and "cached " in cached.stdout
    assert cached.stderr == ""
    log, out = tmp_path / "nncf.log", tmp_path / "out"
    result = quantize(ir_dir_copy(tmp_path), out, log, "--mirror", dest)
    assert result.returncode == 0, result.stderr
    assert runs(log) == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"modelzoo-quantizer: warning: retinanet-tf: mirror {dest}: "), line
    assert "retinanet-tf.bin" in line and line.endswith("; quantizing locally"), line
    assert sorted(p.name for p in (out / MODEL / INT8).iterdir()) == [
        "quantization.json", "retinanet-tf.bin", "retinanet-tf.xml"]
    assert not [p for p in (out / MODEL).iterdir() if p.name.startswith(".")]  # no staging left


def test_sync_ir_int8_without_a_data_set_is_one_line(rebuilt, tmp_path):
    result = run_tool("mirror", "sync", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--to",
                      tmp_path / "m", "--cache_dir", tmp_path / "cache", "--ir", INT8)
    assert result.returncode == 2
    assert one_error_line(result) == ("modelzoo-mirror: error: --ir FP16-INT8/FP32-INT8 quantizes: give --dataset "
                                      "DIR (or --images DIR)")
    assert not (tmp_path / "m").exists()


def test_dry_run_without_the_fp32_ir_says_the_key_is_unknown(rebuilt, tmp_path):
    result = quantize(tmp_path / "nothing", tmp_path / "out", Path(os.devnull), "--dry_run")
    assert result.returncode == 0, result.stderr
    assert "Conversion key: unknown until the FP32 IR is there" in result.stdout
    assert not (tmp_path / "out").exists()


def test_verify_repairs_int8_ir_and_delete_removes_int8_ir_no_longer_made(rebuilt, coco, tmp_path):
    c, m = cold(), int8_mirror()
    dest = tmp_path / "mirror"
    shutil.copytree(m["dest"], dest)
    rel = f"{MODEL}/{INT8}/retinanet-tf.xml"
    target = dest / "ir" / c["key"] / rel
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10])  # truncated
    args = ["--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--at", dest, "--cache_dir", c["cache"],
            "--repair", "--mirror", rebuilt["dl"].as_uri()]
    log = tmp_path / "nncf.log"
    without = run_tool("mirror", "verify", *args, env={"MODELZOO_QUANTIZATION_LOG": str(log)}, timeout=900)
    assert without.returncode == 1
    assert "INT8 IR is repaired by quantizing it again: give --dataset DIR (or --images)" in without.stderr
    assert target.stat().st_size != len(c["files"][f"{INT8}/retinanet-tf.xml"])
    repaired = run_tool("mirror", "verify", *args, "--images", images(), env={"MODELZOO_QUANTIZATION_LOG": str(log)},
                        timeout=900)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert runs(log) == 0  # from the cache: the same key
    assert target.read_bytes() == c["files"][f"{INT8}/retinanet-tf.xml"]
    clean = run_tool("mirror", "verify", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--at", dest)
    assert clean.returncode == 0 and "clean" in clean.stdout
    # other pictures: another key; --delete removes the INT8 IR of the old one, keeps FP16/FP32
    other = tmp_path / "other"
    other.mkdir()
    for picture in sorted((coco / "val2017").iterdir())[-3:]:
        shutil.copyfile(picture, other / picture.name)
    again = run_tool("mirror", "sync", "--models_dir", rebuilt["zoo"], "--name", "retinanet-tf", "--to", dest,
                     "--cache_dir", c["cache"], "--ir", f"FP16,FP32,{INT8}", "--backend", "ovc", "--images", other,
                     "--mirror", rebuilt["dl"].as_uri(), "--delete", timeout=900,
                     env={"MODELZOO_QUANTIZATION_LOG": str(log)})
    assert again.returncode == 0, again.stderr
    assert runs(log) == 1
    entries = json.loads((dest / MANIFEST).read_text())["files"]
    int8_keys = {e["ir_key"] for rel_, e in entries.items() if f"/{INT8}/" in rel_}
    assert len(int8_keys) == 1 and c["key"] not in int8_keys
    assert not (dest / "ir" / c["key"]).exists() or not any((dest / "ir" / c["key"]).rglob("*.*"))
    assert len([r for r in entries if r.startswith("ir/") and "/FP32/" in r]) == 2  # the FP32 IR stays
