"""The mirror as an administrator meets it on a bad day: an edited or hostile manifest, links placed
in DEST, a sync killed with SIGKILL, a --changes file that cannot be written, names that are not
UTF-8. Nothing outside DEST is ever read, written or deleted; each problem is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCRIPTS, _wait_for, one_error_line, run_tool
from test_mirror import files_under, make_zoo, manifest, sync, verify

from modelzoo.mirror.stores import MANIFEST

TWO = {"alpha": {"f.bin": b"alpha" * 100}, "beta": {"f.bin": b"beta" * 100}}


def synced(zoo: Path, server, dest: Path, models: dict = TWO) -> dict:
    make_zoo(zoo, server, models)
    result = sync(zoo, dest, "--all")
    assert result.returncode == 0, result.stderr
    return manifest(dest)


def write_manifest(dest: Path, data) -> None:
    (dest / MANIFEST).write_text(data if isinstance(data, str) else json.dumps(data))


# ----------------------------------------------------------------------------- hole 1: keys outside DEST

@pytest.mark.parametrize("key", ["../victim.txt", "ABSOLUTE", MANIFEST, "public/../../victim.txt", "public//f.bin",
                                 "./public/alpha/f.bin", "public/alpha/", "one-part.bin", ".modelzoo-mirror.lock"])
def test_a_manifest_key_that_is_not_a_path_below_dest_is_refused(zoo, server, tmp_path, key):
    dest = tmp_path / "mirror"
    m = synced(zoo, server, dest)
    victim = tmp_path / "victim.txt"
    victim.write_text("not the mirror's")
    if key == "ABSOLUTE":
        key = str(victim)
    m["files"][key] = m["files"]["public/alpha/f.bin"]
    write_manifest(dest, m)
    before = (dest / MANIFEST).read_bytes()
    result = sync(zoo, dest, "--name", "beta", "--delete")
    assert result.returncode != 0
    line = one_error_line(result)
    assert line.startswith(f"modelzoo-mirror: error: {dest / MANIFEST}: ") and "entry" in line
    assert victim.read_text() == "not the mirror's"
    assert (dest / MANIFEST).read_bytes() == before and (dest / "public/alpha/f.bin").exists()
    result = verify(zoo, dest, "--all")
    assert result.returncode != 0 and one_error_line(result).startswith(f"modelzoo-mirror: error: {dest / MANIFEST}")


# ----------------------------------------------------------------------------- hole 4: malformed manifests

BAD_MANIFESTS = {
    "entry is a number": lambda m: {**m, "files": {**m["files"], "public/alpha/f.bin": 5}},
    "entry is a string": lambda m: {**m, "files": {**m["files"], "public/alpha/f.bin": "x"}},
    "entry is a list": lambda m: {**m, "files": {**m["files"], "public/alpha/f.bin": [1, 2]}},
    "size is a string": lambda m: {**m, "files": {**m["files"], "public/alpha/f.bin": {
        **m["files"]["public/alpha/f.bin"], "size": "500"}}},
    "no sha384": lambda m: {**m, "files": {**m["files"], "public/alpha/f.bin": {
        k: v for k, v in m["files"]["public/alpha/f.bin"].items() if k != "sha384"}}},
    "key with NUL": lambda m: {**m, "files": {**m["files"], "public/al\u0000pha/f.bin": m["files"]["public/alpha/f.bin"]}},
    "nested brackets": lambda m: '{"format": "modelzoo-mirror/1", "files": {"a/b": ' + "[" * 100_000 + "]" * 100_000 + "}}",
    "size of 5000 digits": lambda m: json.dumps(m).replace('"size": 500', '"size": ' + "9" * 5000, 1),
    "files is a list": lambda m: {**m, "files": []},
}


@pytest.mark.parametrize("what", list(BAD_MANIFESTS))
def test_a_malformed_manifest_is_one_line_naming_it(zoo, server, tmp_path, what):
    dest = tmp_path / "mirror"
    m = synced(zoo, server, dest)
    write_manifest(dest, BAD_MANIFESTS[what](m))
    for result in (sync(zoo, dest, "--all"), verify(zoo, dest, "--all"), verify(zoo, dest, "--all", "--quick")):
        assert result.returncode == 1
        assert one_error_line(result).startswith(f"modelzoo-mirror: error: {dest / MANIFEST}: "), result.stderr


# ----------------------------------------------------------------------------- hole 5: FIFO and /dev/zero

@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_a_manifest_that_is_no_regular_file_or_too_big_is_one_line(zoo, server, tmp_path, kind):
    dest = tmp_path / "mirror"
    synced(zoo, server, dest)
    path = dest / MANIFEST
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    else:
        with open(path, "wb") as f:
            f.truncate(1 << 30)  # sparse: a gigabyte of zeros costs no disk
    for args in (("sync", "--to"), ("verify", "--at")):
        result = run_tool("mirror", args[0], "--models_dir", zoo, args[1], dest, "--all", timeout=60)
        assert result.returncode == 1
        assert one_error_line(result).startswith(f"modelzoo-mirror: error: {path}: ")


# ----------------------------------------------------------------------------- holes 2 and 3: links in DEST

def test_delete_never_follows_a_link_placed_in_dest(zoo, server, tmp_path):
    dest = tmp_path / "mirror"
    synced(zoo, server, dest)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "f.bin").write_bytes(b"precious")
    alpha = dest / "public/alpha"
    (alpha / "f.bin").unlink()
    alpha.rmdir()
    alpha.symlink_to(elsewhere)
    result = sync(zoo, dest, "--name", "beta", "--delete")
    assert result.returncode != 0
    assert "link" in one_error_line(result)
    assert (elsewhere / "f.bin").read_bytes() == b"precious"


def test_delete_removes_only_the_file_the_manifest_recorded(zoo, server, tmp_path):
    dest = tmp_path / "mirror"
    synced(zoo, server, dest)
    replaced = dest / "public/alpha/f.bin"
    replaced.unlink()
    replaced.write_bytes(b"alpha" * 100)  # same bytes, but not the file this mirror published
    result = sync(zoo, dest, "--name", "beta", "--delete")
    assert result.returncode == 0, result.stderr
    assert replaced.exists() and "public/alpha/f.bin" not in manifest(dest)["files"]
    assert "not deleting public/alpha/f.bin: it was replaced since this mirror wrote it" in result.stderr


def test_a_folder_link_out_of_dest_is_refused_by_sync_and_verify(zoo, server, tmp_path):
    make_zoo(zoo, server, TWO)
    dest, outside = tmp_path / "mirror", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "public").symlink_to(outside)
    result = sync(zoo, dest, "--all")
    assert result.returncode != 0
    assert one_error_line(result) == (f"modelzoo-mirror: error: {dest / 'public'}: a symbolic link in the "
                                      "mirror (a mirror holds only folders and files; remove the link or "
                                      "mirror to its target)")
    assert list(outside.iterdir()) == [] and not (dest / MANIFEST).exists()
    for args in ((), ("--repair",)):
        result = verify(zoo, dest, "--all", *args)
        assert result.returncode != 0 and "a symbolic link in the mirror" in one_error_line(result)
    assert list(outside.iterdir()) == []


# ----------------------------------------------------------------------------- hole 13: a killed sync

def test_temporaries_of_a_killed_sync_are_listed_then_removed(zoo, server, tmp_path):
    from modelzoo.devtools.loopback import Fault

    data = os.urandom(4 << 20)
    make_zoo(zoo, server, {"slow": {"slow.bin": data}})
    # ~12.8 s in all: it is killed long before, even by a test descheduled for a few seconds
    server.fault("slow/slow.bin", Fault(chunk_size=64 << 10, chunk_delay=0.2))
    dest = tmp_path / "mirror"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo),
                             "--to", str(dest), "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: list(dest.glob("public/slow/.slow.bin.*.part")), "the sync's temporary file", timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    server.fault("slow/slow.bin", Fault())  # fast again: the repair and the sync below fetch it whole
    [dead] = list(dest.glob("public/slow/.slow.bin.*.part"))
    result = verify(zoo, dest, "--all")
    assert result.returncode == 1
    assert f"public/slow/{dead.name}" in result.stdout and "left by a run that was killed" in result.stdout
    kept = dest / "kept.part"
    os.link(dead, kept)  # (a copy for the sync below: verify --repair removes the one it found)
    result = verify(zoo, dest, "--all", "--repair")
    assert not dead.exists() and "removed (a temporary left by a run that was killed)" in result.stdout
    os.rename(kept, dead)
    result = sync(zoo, dest, "--all")
    assert result.returncode == 0, result.stderr
    assert not dead.exists() and not list(dest.rglob("*.part"))
    assert verify(zoo, dest, "--all").returncode == 0


def test_verify_lists_a_hidden_file_it_cannot_account_for(zoo, server, tmp_path):
    dest = tmp_path / "mirror"
    synced(zoo, server, dest)
    (dest / "public/alpha/.notes.part").write_text("someone's")
    result = verify(zoo, dest, "--all")
    assert result.returncode == 1 and "public/alpha/.notes.part" in result.stdout


# ----------------------------------------------------------------------------- hole 12: --changes

def test_an_unwritable_changes_file_is_refused_before_anything_is_published(zoo, server, tmp_path):
    make_zoo(zoo, server, TWO)
    dest = tmp_path / "mirror"
    result = sync(zoo, dest, "--all", "--changes", tmp_path / "no-such-folder" / "changes.lst")
    assert result.returncode != 0
    assert "no-such-folder/changes.lst" in one_error_line(result)
    assert server.count() == 0 and not (dest / "public").exists()


# ----------------------------------------------------------------------------- hole 11: --to s3:// without a bucket

@pytest.mark.parametrize("dest", ["s3://", "s3:///prefix", "file://host/x", "ftp://x/y"])
def test_a_bad_destination_is_a_command_line_error(zoo, tmp_path, dest):
    make_zoo(zoo, None, TWO)
    result = sync(zoo, dest, "--all")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and dest in result.stderr


# ----------------------------------------------------------------------------- hole 9: names that are not UTF-8

def test_names_that_are_not_utf8_are_printed_escaped(zoo, server, tmp_path):
    make_zoo(zoo, server, TWO)
    dest = os.fsencode(tmp_path) + b"/m\xffirror"
    env = {"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "PYTHONIOENCODING": ""}
    result = subprocess.run([sys.executable, str(SCRIPTS / "mirror.py"), "sync", "--models_dir", str(zoo),
                             "--to", dest, "--all"], capture_output=True, env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert b"synced " in result.stdout and b"m\\udcffirror" in result.stdout
    (Path(os.fsdecode(dest)) / os.fsdecode(b"public/alpha/n\xfe.bin")).write_bytes(b"?")
    result = subprocess.run([sys.executable, str(SCRIPTS / "mirror.py"), "verify", "--models_dir", str(zoo),
                             "--at", dest, "--all"], capture_output=True, env={**os.environ, **env}, timeout=120)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"public/alpha/n\\udcfe.bin" in result.stdout
    assert files_under(Path(os.fsdecode(dest)))  # (the mirror itself is fine)
