"""stores in-process: the manifest codec as a guard (a manifest is hostile input), and the folder
store on real files: listing, publishing, deleting only what it recorded, never through a link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from modelzoo import fsio
from modelzoo.errors import MirrorError, UsageError
from modelzoo.mirror.manifest import FORMAT, entry_problem, path_problem
from modelzoo.mirror.stores import LOCK, MANIFEST, FolderStore, decode_manifest, encode_manifest, open_store

ENTRY = {"model": "a", "size": 3, "sha384": "0" * 96, "source": "http://h/a", "descriptor": "public/a/model.yml",
         "descriptor_sha384": "1" * 96, "verified": "2026-01-01T00:00:00Z", "stamp": "1-2-3"}


@pytest.mark.parametrize("rel", ["public/a/a.bin", "a/b", "public/a/FP16/x.xml", "a/.hidden"])
def test_paths_below_dest(rel):
    assert path_problem(rel) is None


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a", "a//b", "a/./b", "a/../b", "a/b/", "a/\0b",
                                 MANIFEST, f"a/{MANIFEST}", LOCK, "a/.b.123-0123456789ab.part", 7])
def test_paths_that_are_not_below_dest(rel):
    assert path_problem(rel)


@pytest.mark.parametrize("entry", [5, "x", [1], {**ENTRY, "size": "3"}, {**ENTRY, "size": True},
                                   {**ENTRY, "size": -1}, {k: v for k, v in ENTRY.items() if k != "stamp"},
                                   {**ENTRY, "model": 1}])
def test_entries_of_the_wrong_shape(entry):
    assert entry_problem(entry)


def test_round_trip_and_refusals_name_the_manifest():
    data = {"format": FORMAT, "updated": "x", "files": {"public/a/a.bin": ENTRY}}
    assert decode_manifest(encode_manifest(data), "M") == data
    for raw in (b"[" * 100_000, b'{"format": "modelzoo-mirror/1", "files": {"a/b": {"size": ' + b"9" * 5000 + b"}}}",
                b"\xff", json.dumps({**data, "files": {"../x": ENTRY}}).encode()):
        with pytest.raises(MirrorError) as info:
            decode_manifest(raw, "M")
        assert str(info.value).startswith("M: ") and "\n" not in str(info.value)


def test_folder_store_publishes_lists_and_deletes_only_its_file(tmp_path):
    store = FolderStore(tmp_path / "d")
    with store.incoming("public/a/a.bin") as tmp:
        tmp.write_bytes(b"abc")
        present = store.publish("public/a/a.bin", tmp, 3, "", threading.Event())
    assert store.list() == {"public/a/a.bin": present} and store.stat("public/a/a.bin") == present
    assert store.hash("public/a/a.bin", threading.Event())[0] == 3
    with pytest.raises(MirrorError, match="replaced since"):
        store.delete("public/a/a.bin", "another-stamp")
    store.delete("public/a/a.bin", present.stamp)
    assert not (tmp_path / "d/public").exists()  # the folders it emptied go too


def test_a_link_in_dest_is_refused_by_listing_publishing_and_deleting(tmp_path):
    outside = tmp_path / "outside"
    (outside / "a").mkdir(parents=True)
    (outside / "a/a.bin").write_bytes(b"abc")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/public").symlink_to(outside)
    store = FolderStore(tmp_path / "d")
    for attempt in (store.list, lambda: store.incoming("public/a/a.bin").__enter__(),
                    lambda: store.delete("public/a/a.bin")):
        with pytest.raises(MirrorError, match="a symbolic link in the mirror"):
            attempt()
    assert (outside / "a/a.bin").exists()


def test_temporaries_of_dead_processes_are_told_apart_and_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / "d/public/a").mkdir(parents=True)
    mine = fsio.temp_name(tmp_path / "d/public/a/a.bin")
    mine.write_bytes(b"")
    theirs = tmp_path / f"d/public/a/.a.bin.{dead}-0123456789ab.part"
    theirs.write_bytes(b"")
    store = FolderStore(tmp_path / "d")
    assert store.list() == {}
    left = store.leftovers()
    assert "killed" in left[f"public/a/{theirs.name}"] and "in progress" in left[f"public/a/{mine.name}"]
    assert store.remove_dead() == [f"public/a/{theirs.name}"] and not theirs.exists() and mine.exists()


def test_a_manifest_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / MANIFEST)
    with pytest.raises(MirrorError, match="not a regular file"):
        FolderStore(tmp_path / "d").read_manifest()


@pytest.mark.parametrize("dest", ["s3://", "s3:///p", "file://host/x", "ftp://x"])
def test_bad_destinations_are_usage_errors(dest):
    with pytest.raises(UsageError):
        open_store(dest)
