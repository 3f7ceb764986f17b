"""fsio in-process: temporaries, unbuffered checked writes, atomic placing, all-or-none swaps."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from modelzoo import fsio
from modelzoo.errors import DiskFullError, FileSystemError, Interrupted, OutputNotWritableError


@pytest.mark.parametrize("code,cls", [(errno.ENOSPC, DiskFullError), (errno.EDQUOT, DiskFullError),
                                      (errno.EROFS, OutputNotWritableError), (errno.EACCES, OutputNotWritableError),
                                      (errno.EIO, FileSystemError)])
def test_fs_error_names_the_path_it_is_given(code, cls):
    exc = OSError(code, os.strerror(code), "/the/other/end")
    err = fsio.fs_error(Path("/out/m.bin"), exc)
    assert type(err) is cls and "/out/m.bin" in str(err) and "/the/other/end" not in str(err)


def test_temporary_beside_is_registered_then_removed(tmp_path):
    dest = tmp_path / "m.bin"
    with pytest.raises(RuntimeError):
        with fsio.temporary_beside(dest) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".m.bin.") and tmp in fsio.TEMPORARIES
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == [] and tmp not in fsio.TEMPORARIES


def test_place_checks_the_size_on_disk_before_the_rename(tmp_path):
    dest = tmp_path / "m.bin"
    dest.write_bytes(b"old")
    with fsio.temporary_beside(dest) as tmp:
        with fsio.Writer(tmp) as out:
            out.write(b"0123456789")
        with pytest.raises(FileSystemError, match="10 bytes on disk after writing 11"):
            fsio.place(tmp, dest, size=11)
        assert dest.read_bytes() == b"old"
        fsio.place(tmp, dest, size=10)
    assert dest.read_bytes() == b"0123456789" and sorted(p.name for p in tmp_path.iterdir()) == ["m.bin"]


def test_a_failed_write_is_reported_at_the_write_not_lost_in_a_buffer():
    """/dev/full takes no byte: an unbuffered writer says so at the write that failed, so no
    caller can count (or hash) bytes the disk never took."""
    out = fsio.Writer(Path("/dev/full"), "ab")
    with pytest.raises(DiskFullError, match="no space left on device while writing /dev/full"):
        out.write(b"x" * 100)
    out.close()


def test_copy_file_blames_the_destination_for_a_full_disk(tmp_path):
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(100_000))
    with pytest.raises(DiskFullError, match="/dev/full"):
        fsio.copy_file(src, Path("/dev/full"))
    with pytest.raises(FileSystemError, match="cannot read .*missing"):
        fsio.copy_file(tmp_path / "missing", tmp_path / "x")
    fsio.copy_file(src, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == src.read_bytes()


def test_write_bytes_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "run.sh"
    path.write_text("old")
    path.chmod(0o751)
    fsio.write_bytes(path, b"new", like=path)
    assert path.read_bytes() == b"new" and (path.stat().st_mode & 0o777) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]


def test_staged_dir_is_unique_and_removed(tmp_path):
    with fsio.staged_dir(tmp_path, ".stage-") as a, fsio.staged_dir(tmp_path, ".stage-") as b:
        assert a != b and a.is_dir() and b.is_dir()
        (a / "sub").mkdir()
        (a / "sub" / "f").write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_swap_in_replaces_all(tmp_path):
    final = tmp_path / "final"
    (final / "FP32").mkdir(parents=True)
    (final / "FP32" / "m.xml").write_bytes(b"old")
    staged = tmp_path / "staged"
    for p in ("FP32", "FP16"):
        (staged / p).mkdir(parents=True)
        (staged / p / "m.xml").write_bytes(p.encode())
    fsio.swap_in([(staged / p, final / p) for p in ("FP32", "FP16")])
    assert _tree(final) == {"FP16/m.xml": b"FP16", "FP32/m.xml": b"FP32"}
    assert sorted(p.name for p in final.iterdir()) == ["FP16", "FP32"]  # no .old left


def test_swap_in_puts_everything_back_when_one_move_fails(tmp_path):
    final = tmp_path / "final"
    for p in ("a", "b"):
        (final / p).mkdir(parents=True)
        (final / p / "f").write_bytes(b"old " + p.encode())
    staged = tmp_path / "staged"
    (staged / "a").mkdir(parents=True)
    (staged / "a" / "f").write_bytes(b"new a")
    before = _tree(final)
    with pytest.raises(FileSystemError, match="cannot move into place .*final/b"):
        fsio.swap_in([(staged / "a", final / "a"), (staged / "missing", final / "b")])
    assert _tree(final) == before and sorted(p.name for p in final.iterdir()) == ["a", "b"]
    assert (staged / "a" / "f").read_bytes() == b"new a"  # back where it was staged


def test_remove_all_cleans_and_closes():
    registry = fsio.Temporaries()
    import tempfile

    folder = Path(tempfile.mkdtemp())
    f = registry.add(folder / "t.part")
    f.write_bytes(b"x")
    d = registry.add(folder / "stage")
    (d / "deep").mkdir(parents=True)
    registry.remove_all()
    assert list(folder.iterdir()) == []
    with pytest.raises(Interrupted):
        registry.add(folder / "late.part")
    with pytest.raises(Interrupted):
        with registry.critical():
            pass
    registry.reopen()
    registry.add(folder / "again.part")
    folder.rmdir()


def test_check_inside_follows_links(tmp_path):
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "in").symlink_to("sub")
    (root / "out").symlink_to(tmp_path)
    fsio.check_inside(root / "in" / "f.txt", root)
    fsio.check_inside(root / "new" / "f.txt", root)
    with pytest.raises(FileSystemError, match=r"leads outside .* \(through a link\)"):
        fsio.check_inside(root / "out" / "f.txt", root)


def test_folder_lock_excludes_and_stays_interruptible(tmp_path):
    import threading

    order = []
    with fsio.folder_lock(tmp_path):
        calls = []

        def check_cancel() -> None:
            calls.append(1)
            if len(calls) > 3:
                raise Interrupted("interrupted")

        with pytest.raises(Interrupted):  # the same folder, another open file: waits, then is cancelled
            with fsio.folder_lock(tmp_path, check_cancel):
                order.append("inner")
    t = threading.Thread(target=lambda: fsio.folder_lock(tmp_path).__enter__())
    t.start()
    t.join(5)
    assert order == [] and not t.is_alive()


def test_a_failed_close_is_raised_even_while_another_error_is_in_flight(tmp_path):
    """The kernel reports some write errors only at close (NFS, quotas): such an error must not
    be swallowed by an exception already on its way, or a caller would trust the bytes it counted."""

    class ClosesBadly:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            return self.f.write(data)

        def close(self):
            self.f.close()
            raise OSError(errno.EIO, "Input/output error")

    path = tmp_path / "f"
    with pytest.raises(FileSystemError, match="cannot write .*: Input/output error") as caught:
        with fsio.Writer(path) as out:
            out._f = ClosesBadly(out._f)  # the file object stands in for an NFS mount
            out.write(b"x")
            raise RuntimeError("something else went wrong first")
    assert isinstance(caught.value.__context__.__context__, RuntimeError)  # chained, not lost


def test_no_file_appears_after_the_temporaries_were_removed(tmp_path):
    fsio.TEMPORARIES.remove_all()
    try:
        with pytest.raises(Interrupted):
            fsio.Writer(tmp_path / "late.part")
        with pytest.raises(Interrupted):
            with fsio.staged_dir(tmp_path, ".stage-"):
                pass
        assert list(tmp_path.iterdir()) == []
    finally:
        fsio.TEMPORARIES.reopen()


def test_temporaries_name_their_process_so_a_later_run_can_tell_dead_ones(tmp_path):
    import subprocess
    import sys

    tmp = fsio.temp_name(tmp_path / "f.bin")
    assert fsio.temporary_owner(tmp.name) == os.getpid() and fsio.process_alive(os.getpid())
    assert fsio.temporary_owner(".notes.part") is None and fsio.temporary_owner("f.bin") is None
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    assert not fsio.process_alive(dead)
    (tmp_path / f"stage-{dead}-abc").mkdir()
    (tmp_path / f"stage-{os.getpid()}-abc").mkdir()
    fsio.remove_dead_staged(tmp_path, "stage-")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"stage-{os.getpid()}-abc"]
