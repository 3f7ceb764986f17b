"""fsio against what someone could plant in a shared cache: links inside a confined folder are
never followed (written, removed or gone through), and a FIFO never blocks a writer, nor, through
the temporaries' lock, the cancel that must remove them."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from modelzoo import fsio
from modelzoo.errors import FileSystemError, PlantedEntryError


def test_a_writer_at_a_fifo_neither_blocks_nor_holds_the_temporaries_lock(tmp_path):
    fifo = tmp_path / "m.bin.incomplete"
    os.mkfifo(fifo)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            fsio.Writer(fifo, "ab").close()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    writer.join(30)  # (a hang guard: before the fix the open waited for a reader for ever)
    try:
        assert not writer.is_alive(), "the writer blocked in open() of a FIFO"
        assert len(errors) == 1 and isinstance(errors[0], FileSystemError)
        cancel = threading.Thread(target=fsio.TEMPORARIES.remove_all, daemon=True)
        cancel.start()
        cancel.join(30)
        assert not cancel.is_alive(), "remove_all waited for the temporaries' lock"
    finally:
        fsio.TEMPORARIES.reopen()
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # (frees a writer still blocked: the old code)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, Path]:
    """A confined folder holding a link ``ab`` to a folder outside it (with one file), and the
    outside folder."""
    store, outside = tmp_path / "store", tmp_path / "outside"
    store.mkdir()
    outside.mkdir()
    (outside / "theirs").write_bytes(b"theirs")
    (store / "ab").symlink_to(outside)
    fsio.confine(store)
    return store, outside


def test_nothing_is_written_or_renamed_through_a_link_in_a_confined_folder(store):
    store, outside = store
    with pytest.raises(PlantedEntryError, match="symbolic link"):
        fsio.Writer(store / "ab" / "new", "wb")
    with pytest.raises(PlantedEntryError):
        fsio.write_bytes(store / "ab" / "record.ok", b"x")
    (store / "f").write_bytes(b"x")
    with pytest.raises(PlantedEntryError):
        fsio.place(store / "f", store / "ab" / "theirs")
    (store / "cd").symlink_to(outside / "theirs")
    with pytest.raises(PlantedEntryError):
        fsio.Writer(store / "cd", "ab")
    with pytest.raises(OSError):
        fsio.open_regular(store / "cd")
    assert sorted(p.name for p in outside.iterdir()) == ["theirs"] and (outside / "theirs").read_bytes() == b"theirs"


def test_remove_and_makedirs_replace_a_link_never_its_target(store):
    store, outside = store
    fsio.remove(store / "ab" / "theirs")  # not gone into
    assert (outside / "theirs").exists()
    fsio.makedirs(store / "ab" / "cd")  # the link is not the store's: a folder of its own in its place
    assert not (store / "ab").is_symlink() and (store / "ab" / "cd").is_dir()
    (store / "ef").symlink_to(outside)
    fsio.remove(store / "ef")
    assert not (store / "ef").is_symlink() and sorted(p.name for p in outside.iterdir()) == ["theirs"]


def test_a_blob_the_ir_cache_is_adding_is_no_stray_for_verify(tmp_path):
    """IrCache.add puts each new blob at fsio's temporary beside it first: verify (which covers
    the IR store now) must not report a live one as not made by the cache."""
    from modelzoo.store import cache_verify
    from modelzoo.store.cache import Cache

    store = Cache(tmp_path / "ir")
    blob = store.blob_path("ab" + "0" * 94)
    blob.parent.mkdir(parents=True)
    with fsio.temporary_beside(blob, ".incomplete") as tmp:
        tmp.write_bytes(b"being added")
        assert cache_verify.verify(store, jobs=1).findings == []
    os.utime(blob.parent, None)
    dead = blob.parent / f".{blob.name}.999999999-{'0' * 12}.incomplete"  # (no such pid)
    dead.write_bytes(b"left by a killed run")
    assert [f.path for f in cache_verify.verify(store, jobs=1).findings] == [dead]
