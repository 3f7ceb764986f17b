"""Nothing half-written: the one home of every write that ends at a path a user sees.

Rules this module enforces for the whole project:

- A final path only ever receives a complete file or folder, by rename (``os.replace``) from a
  temporary beside it, so a crash, a full disk or Ctrl-C leaves the old content or nothing.
- Every temporary is registered in :data:`TEMPORARIES` while it exists; on Ctrl-C / SIGTERM the
  CLI calls ``TEMPORARIES.remove_all()``, which waits for a rename in progress, removes what is
  left and refuses new temporaries from then on.
- Writes are unbuffered and every ``write`` and ``close`` is checked, so bytes counted by a caller
  are bytes the kernel accepted; the size on disk is checked again before a rename.
- ``OSError`` becomes one of our errors with a path in its message (:func:`fs_error`).

Example::

    with fsio.temporary_beside(dest) as tmp:      # .dest.<pid>-<random>.part, registered
        with fsio.Writer(tmp) as out:
            out.write(data)
        fsio.place(tmp, dest, size=len(data))      # checked, then renamed
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of modelzoo-cache verify's start)
if TYPE_CHECKING:
    from typing import Callable, Iterator

from .errors import DiskFullError, FileSystemError, Interrupted, OutputNotWritableError

_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def fs_error(path: Path | str, exc: OSError, action: str = "write") -> FileSystemError:
    """The named error for a failed file-system operation on ``path`` (never the OSError's own
    file name: shutil and sendfile may name the other end of a copy)."""
    if exc.errno in _FULL:
        doing = "writing" if action == "write" else f"trying to {action}"
        return DiskFullError(f"no space left on device while {doing} {path}")
    if exc.errno in _NOT_WRITABLE:
        return OutputNotWritableError(f"cannot {action} {path}: {exc.strerror or exc}")
    return FileSystemError(f"cannot {action} {path}: {exc.strerror or exc}")


class Temporaries:
    """The temporary files and folders of this process that a cancellation must remove.

    ``critical()`` is held around renames that move things into place, so that ``remove_all``
    never runs in the middle of one (it would delete the old copy of a folder being swapped).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._paths: set[Path] = set()
        self._closed = False

    def add(self, path: Path) -> Path:
        with self._lock:
            if self._closed:
                raise Interrupted("interrupted")
            self._paths.add(Path(path))
        return path

    def discard(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(Path(path))

    @contextmanager
    def critical(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise Interrupted("interrupted")
            yield

    def remove_all(self) -> None:
        """Remove every registered temporary; later ``add`` or ``critical`` raise Interrupted."""
        with self._lock:
            self._closed = True
            paths, self._paths = sorted(self._paths, reverse=True), set()
        for path in paths:
            remove(path)

    def reopen(self) -> None:
        """For in-process callers (tests, a long-lived program) after a cancelled run."""
        with self._lock:
            self._closed = False

    def __contains__(self, path: Path) -> bool:
        with self._lock:
            return Path(path) in self._paths


TEMPORARIES = Temporaries()


def remove(path: Path) -> None:
    """Remove a file, link or folder tree if it exists; never raises."""
    try:
        if path.is_dir() and not path.is_symlink():
            import shutil  # (shutil, tempfile: imported where used; a warm run needs neither)

            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass


def check_inside(path: Path, root: Path) -> None:
    """Refuse a path that, links followed, leaves ``root`` (a second line behind the archive
    checks: nothing is ever written outside a model folder)."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        raise FileSystemError(f"{path} leads outside {root} (through a link); not written") from None


def makedirs(path: Path) -> None:
    """mkdir -p, with our error names."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fs_error(path, exc, "create folder") from exc


def temp_name(dest: Path, suffix: str = ".part") -> Path:
    """A unique hidden name beside ``dest`` (same folder, so a rename is atomic), naming this
    process: a later run can tell one that a killed run left (``temporary_owner``)."""
    tag = f".{os.getpid()}-{os.urandom(6).hex()}{suffix}"
    return dest.with_name(f".{short_name(dest.name, 1 + len(tag))}{tag}")


NAME_MAX = 255  # bytes in one name (Linux, macOS, Windows file systems alike)


def short_name(name: str, extra: int) -> str:
    """``name``, cut so that ``extra`` more bytes still make a name the file system takes: a
    temporary for a valid 231-255-byte name would otherwise be too long."""
    raw = os.fsencode(name)
    room = NAME_MAX - extra
    if len(raw) <= room:
        return name
    for end in range(room, max(room - 4, 0), -1):  # not in the middle of a UTF-8 character
        try:
            return raw[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return os.fsdecode(raw[:room])  # not UTF-8 anyway: its bytes as they are


def temporary_owner(name: str) -> int | None:
    """The pid in a name made by ``temp_name`` (``.<name>.<pid>-<12 hex>.<suffix>``), else None."""
    if not name.startswith(".") or not name.endswith((".part", ".tmp", ".old", ".raw")):
        return None
    stem = name[1:].rsplit(".", 1)[0]
    _, _, tag = stem.rpartition(".")
    pid, dash, rand = tag.partition("-")
    if not (dash and pid.isdigit() and len(rand) == 12 and all(c in "0123456789abcdef" for c in rand)):
        return None
    return int(pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (this machine's; ours counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


@contextmanager
def temporary_beside(dest: Path, suffix: str = ".part") -> Iterator[Path]:
    """A registered temporary path beside ``dest``; whatever is left there when the block ends
    (moved into place or not) is removed."""
    tmp = TEMPORARIES.add(temp_name(dest, suffix))
    try:
        yield tmp
    finally:
        remove(tmp)
        TEMPORARIES.discard(tmp)


@contextmanager
def staged_dir(parent: Path, prefix: str) -> Iterator[Path]:
    """A registered, uniquely named folder inside ``parent`` (so each run, process or thread has
    its own), removed with everything in it when the block ends; so are the folders it had to
    create for ``parent``, where they are left empty (a run that failed leaves nothing at -o)."""
    created = []
    ancestor = parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        created.append(ancestor)
        ancestor = ancestor.parent
    makedirs(parent)
    with TEMPORARIES.critical():
        try:
            import tempfile

            path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
        except OSError as exc:
            raise fs_error(parent, exc, "create a staging folder in") from exc
        TEMPORARIES.add(path)
    try:
        yield path
    finally:
        remove(path)
        TEMPORARIES.discard(path)
        for folder in created:  # (innermost first; rmdir removes only an empty folder)
            try:
                folder.rmdir()
            except OSError:
                break


def remove_dead_staged(parent: Path, prefix: str) -> None:
    """Remove the staging folders ``<prefix><pid>-...`` in ``parent`` whose process no longer
    exists (a run that was killed); those of live runs are theirs."""
    for folder in parent.glob(f"{prefix}*-*"):
        pid = folder.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            remove(folder)


class Writer:
    """Appends or writes to a file without a user-space buffer: each ``write`` returns only when
    the kernel has taken every byte, and an error from ``close`` is never swallowed, so a caller
    that counts or hashes what it wrote counts what is on disk."""

    def __init__(self, path: Path, mode: str = "wb") -> None:
        if mode not in ("wb", "ab"):
            raise ValueError(mode)
        self.path = path
        try:
            # Under the registry's lock: once a cancel has removed the temporaries, no new
            # file appears behind its back.
            with TEMPORARIES.critical():
                self._f = open(path, mode, buffering=0)
        except OSError as exc:
            raise fs_error(path, exc) from exc

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                n = self._f.write(view)
                view = view[n:]
        except OSError as exc:
            raise fs_error(self.path, exc) from exc

    def close(self) -> None:
        try:
            self._f.close()
        except OSError as exc:
            raise fs_error(self.path, exc) from exc

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # A failed close must surface even while another exception is in flight: the caller
        # may otherwise trust bytes it counted. Raising here chains the first one.
        self.close()


def write_bytes(dest: Path, data: bytes, *, like: Path | None = None) -> None:
    """Replace ``dest`` by ``data`` atomically (the mode bits of ``like`` kept, if given)."""
    with temporary_beside(dest, ".tmp") as tmp:
        with Writer(tmp) as out:
            out.write(data)
        if like is not None:
            try:
                import shutil

                shutil.copymode(like, tmp)
            except OSError as exc:
                raise fs_error(tmp, exc) from exc
        place(tmp, dest, size=len(data))


def read_small(path: Path, limit: int) -> bytes:
    """The first ``limit`` bytes of a regular file. Anything else at ``path`` (a FIFO, which
    would block a plain open for ever; a device; a folder) is an OSError, like a missing file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_size(path: Path, size: int) -> None:
    """The file on disk holds exactly ``size`` bytes (what a verifier counted reached the disk)."""
    try:
        on_disk = path.stat().st_size
    except OSError as exc:
        raise fs_error(path, exc, "read") from exc
    if on_disk != size:
        raise FileSystemError(f"{path}: {on_disk} bytes on disk after writing {size}; not moved into place")


def place(tmp: Path, dest: Path, *, size: int | None = None) -> None:
    """Rename a complete temporary file onto ``dest`` (atomic); with ``size``, the file on disk
    is checked first."""
    if size is not None:
        check_size(tmp, size)
    with TEMPORARIES.critical():
        try:
            os.replace(tmp, dest)
        except OSError as exc:
            raise fs_error(dest, exc, "move into place") from exc
        TEMPORARIES.discard(tmp)


def swap_in(pairs: list[tuple[Path, Path]]) -> None:
    """Put every staged file or folder at its final path, all or none: the old entries are
    renamed aside first, and any failure puts back exactly what was there before. Only renames
    within one folder are used, so nothing is copied and nothing is left half-moved."""
    with TEMPORARIES.critical():
        aside: list[tuple[Path, Path]] = []  # (final, where its old content now is)
        done: list[tuple[Path, Path]] = []  # (staged, final) already moved in
        try:
            for staged, final in pairs:
                if final.exists() or final.is_symlink():
                    old = temp_name(final, ".old")
                    os.replace(final, old)
                    aside.append((final, old))
                os.replace(staged, final)
                done.append((staged, final))
        except OSError as exc:
            failed_at = final
            for staged, final in reversed(done):
                try:
                    os.replace(final, staged)
                except OSError:
                    remove(final)
            lost = []
            for final, old in reversed(aside):
                try:
                    os.replace(old, final)
                except OSError:
                    lost.append(f"{final} is at {old}")
            err = fs_error(failed_at, exc, "move into place")
            if lost:  # say where the old content is rather than leave it unexplained
                err = type(err)(f"{err}; could not put back: {', '.join(lost)}")
            raise err from exc
        for _, old in aside:
            remove(old)


def copy_file(src: Path, dst: Path) -> None:
    """Copy src to dst with the kernel's fast path; an error names the side it belongs to (a
    full or read-only file system is always dst's, whatever the OSError says)."""
    try:
        fin = open(src, "rb")
    except OSError as exc:
        raise fs_error(src, exc, "read") from exc
    with fin, Writer(dst, "wb") as out:
        size = os.fstat(fin.fileno()).st_size
        offset = 0
        try:
            while offset < size:
                try:
                    sent = os.sendfile(out._f.fileno(), fin.fileno(), offset, min(size - offset, 1 << 30))
                except OSError as exc:
                    if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
                        raise
                    break  # no sendfile between these two: copy through memory below
                if sent == 0:
                    break
                offset += sent
        except OSError as exc:
            if exc.errno in _FULL + _NOT_WRITABLE:
                raise fs_error(dst, exc) from exc
            raise fs_error(src, exc, "copy") from exc
        fin.seek(offset)
        while chunk := fin.read(1 << 20):
            out.write(chunk)
    check_size(dst, size)


@contextmanager
def folder_lock(folder: Path, check_cancel: Callable[[], None] | None = None) -> Iterator[None]:
    """An exclusive inter-process lock on a folder: flock on the folder itself, so no lock file
    is left in a user's folder. Waiting for it stays interruptible through ``check_cancel``."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise fs_error(folder, exc, "open") from exc
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if check_cancel is not None:
                    check_cancel()
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
