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
- Inside a folder registered with :func:`confine` (a cache's store), no link is followed: every
  path there is reached from that folder one name at a time (``O_NOFOLLOW``, ``dir_fd``), so a
  link planted in a shared cache is an error, never a write, read or removal elsewhere. A
  ``Writer`` opens only a regular file, without blocking (never a FIFO), and no call that can
  block is made under the temporaries' lock, so a cancel always gets it.

Example::

    with fsio.temporary_beside(dest) as tmp:      # .dest.@<host>.<pid>-<random>.part, registered
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

from .errors import DiskFullError, FileSystemError, Interrupted, OutputNotWritableError, PlantedEntryError

_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, errno.EDQUOT)


def fs_error(path: Path | str, exc: OSError, action: str = "write") -> FileSystemError:
    """The named error for a failed file-system operation on ``path`` (never the OSError's own
    file name: shutil and sendfile may name the other end of a copy)."""
    if exc.errno == errno.ELOOP:
        return PlantedEntryError(f"cannot {action} {path}: a symbolic link is in its way (not followed)")
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


# -- folders whose inside is never reached through a link (the caches)

_CONFINED: tuple[str, ...] = ()  # absolute roots (replaced whole, never changed in place: readers need no lock)
_CONFINING = threading.Lock()
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def confine(root: Path) -> None:
    """From now on, every path below ``root`` that this module opens, creates, renames or
    removes is reached from ``root`` one folder at a time, without following a link (``root``
    itself is followed: it is where the user put it). A cache registers its store: a shard
    folder, a partial download or a lock file that someone replaced by a link then makes the
    operation fail (``PlantedEntryError``) instead of writing outside the cache."""
    global _CONFINED
    root = os.path.abspath(root)
    with _CONFINING:
        if root not in _CONFINED:
            _CONFINED = _CONFINED + (root,)


def _confinement(path: Path | str) -> tuple[str, list[str]] | None:
    """(root, the parts below it) for a path inside a confined folder (the shortest root that
    holds it), else None."""
    if not _CONFINED:
        return None
    p = os.path.abspath(path)
    best = None
    for root in _CONFINED:
        if p.startswith(root + "/") and (best is None or len(root) < len(best)):
            best = root
    return None if best is None else (best, p[len(best) + 1:].split("/"))


def _walk(root: str, parts: list[str], create: bool) -> int:
    """The folder ``root/parts...``, open, each part opened in the one before without following
    a link (OSError ELOOP on a link, ENOTDIR on a file). ``create``: the folders on the way are
    made the confined folder's own: a missing one is made, and a link or anything else that is
    not a folder in its place is removed first (the link, never its target)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            for attempt in (1, 2):
                try:
                    nfd = os.open(part, OPEN_DIR, dir_fd=fd)
                    break
                except OSError as exc:
                    if not create or attempt == 2 or exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                        if exc.errno == errno.ENOTDIR and _is_link(part, fd):
                            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP)) from None  # (O_DIRECTORY says ENOTDIR)
                        raise
                    missing = exc.errno == errno.ENOENT
                if not missing and not stat.S_ISDIR(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    os.unlink(part, dir_fd=fd)  # not made by the cache
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass  # (made by another process meanwhile)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_dir(path: Path | str, create: bool = False) -> int:
    """The folder at ``path``, open (inside a confined folder: reached without following a
    link, ``create`` as ``_walk`` makes the folders; elsewhere ``create`` is mkdir -p). Raises
    OSError."""
    found = _confinement(path)
    if found is not None:
        return _walk(found[0], found[1], create)
    if create:
        os.makedirs(path, exist_ok=True)
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


@contextmanager
def at(path: Path | str, create: bool = False) -> Iterator[tuple[int | None, str]]:
    """(dir_fd, name) to reach ``path`` by in an ``os`` call: inside a confined folder, its
    parent folder opened from the root without following a link (``create``: made where
    missing), and its name; elsewhere (None, the path as it is). Raises OSError."""
    found = _confinement(path)
    if found is None:
        yield None, os.fspath(path)
        return
    root, parts = found
    fd = _walk(root, parts[:-1], create)
    try:
        yield fd, parts[-1]
    finally:
        os.close(fd)


def open_regular(path: Path | str, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """A file descriptor of the regular file at ``path``, never of anything else: the open
    does not block (a FIFO would wait for a peer for ever) and follows no link at the path
    (nor on the way, inside a confined folder); a FIFO, device or folder there is an OSError
    EINVAL, a link ELOOP."""
    with at(path) as (dir_fd, name):
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat(path: Path | str) -> os.stat_result:
    """The stat of what is at ``path`` itself (a link is not followed, nor one on the way
    inside a confined folder). Raises OSError."""
    with at(path) as (dir_fd, name):
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def remove(path: Path) -> None:
    """Remove a file, link or folder tree if it exists; never raises. (Inside a confined folder
    nothing on the way is followed: a link is removed, never what it points at.)"""
    if _confinement(path) is not None:
        try:
            with at(path) as (dir_fd, name):
                if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    import shutil

                    shutil.rmtree(name, dir_fd=dir_fd)  # (fd-based: follows no link inside)
                else:
                    os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass
        return
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
    """mkdir -p, with our error names (inside a confined folder, a link on the way is an error)."""
    try:
        found = _confinement(path)
        if found is not None:
            os.close(_walk(found[0], found[1], create=True))
            return
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fs_error(path, exc, "create folder") from exc


OTHER_HOST_GRACE = 86400.0  # seconds: another host's temporary older than this is a stray (see ``Owner``)


def host_tag() -> str:
    """This machine's name as temporaries carry it: ASCII letters, digits, '-' and '_' only (a
    dot or a slash would break the name apart), at most 64 characters."""
    name = os.uname().nodename or "localhost"
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "_" for c in name)[:64]


def temp_name(dest: Path, suffix: str = ".part") -> Path:
    """A unique hidden name beside ``dest`` (same folder, so a rename is atomic), naming this
    host and process (``.<name>.@<host>.<pid>-<12 hex><suffix>``): a later run can tell one that
    a killed run of its own host left from one of another host that shares the folder
    (``temporary_owner``). A long name is cut so that the temporary is still a name the file
    system takes."""
    tag = f".@{host_tag()}.{os.getpid()}-{os.urandom(6).hex()}{suffix}"
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


class Owner(int):
    """The pid of a temporary's maker, with its host ("" in a name from before hosts were named:
    this host's). A pid means something only on its own host: ``process_alive`` never calls
    another host's run dead, so no run removes another host's temporaries; the cache's tools
    take one older than OTHER_HOST_GRACE for a stray (listed by verify and ls, removed by --repair)."""

    host: str

    def __new__(cls, pid: int, host: str = "") -> "Owner":
        owner = super().__new__(cls, pid)
        owner.host = host
        return owner

    @property
    def here(self) -> bool:
        return self.host in ("", host_tag())


def temporary_owner(name: str) -> Owner | None:
    """The maker of a name made by ``temp_name`` (``.<name>[.@<host>].<pid>-<12 hex><suffix>``),
    else None."""
    if not name.startswith(".") or not name.endswith((".part", ".tmp", ".old", ".raw", ".incomplete", ".link")):
        return None
    stem = name[1:].rsplit(".", 1)[0]
    rest, _, tag = stem.rpartition(".")
    pid, dash, rand = tag.partition("-")
    if not (dash and pid.isdigit() and len(rand) == 12 and all(c in "0123456789abcdef" for c in rand)):
        return None
    _, _, host = rest.rpartition(".")
    return Owner(int(pid), host[1:] if host.startswith("@") else "")


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (this machine's; ours counts as alive). An
    ``Owner`` of another host counts as alive: its pid says nothing here."""
    if not getattr(pid, "here", True):
        return True
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


def staged_extra() -> int:
    """Bytes ``staged_dir`` adds after its prefix (``@<host>.`` and mkdtemp's 8 characters): what a
    caller leaves room for when its prefix carries a long name."""
    return len(f"@{host_tag()}.") + 8


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

            path = Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}@{host_tag()}."))  # (the host: see Owner)
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
    """Remove the staging folders ``<prefix><pid>-[@<host>.]...`` in ``parent`` whose process no
    longer exists (a run of this host that was killed); those of live runs are theirs, and
    another host's are never removed here (its pid says nothing on this host)."""
    for folder in parent.glob(f"{prefix}*-*"):
        pid, _, rest = folder.name[len(prefix):].partition("-")
        host = rest[1:].split(".", 1)[0] if rest.startswith("@") else ""
        if pid.isdigit() and not process_alive(Owner(int(pid), host)):
            remove(folder)


class Writer:
    """Appends or writes to a file without a user-space buffer: each ``write`` returns only when
    the kernel has taken every byte, and an error from ``close`` is never swallowed, so a caller
    that counts or hashes what it wrote counts what is on disk."""

    def __init__(self, path: Path, mode: str = "wb") -> None:
        if mode not in ("wb", "ab"):
            raise ValueError(mode)
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_TRUNC if mode == "wb" else os.O_APPEND)
        try:
            with at(path) as (dir_fd, name):
                confined = dir_fd is not None
                # Under the registry's lock, so that once a cancel has removed the temporaries no
                # new file appears behind its back; non-blocking (a FIFO there would wait for a
                # reader for ever, and the cancel with it); in a cache, never through a link.
                with TEMPORARIES.critical():
                    fd = os.open(name, flags | (os.O_NOFOLLOW if confined else 0), 0o666, dir_fd=dir_fd)
            try:
                mode_bits = os.fstat(fd).st_mode
                # (in a cache only a regular file; elsewhere a device such as /dev/full may be
                # written, a FIFO never)
                if (confined and not stat.S_ISREG(mode_bits)) or stat.S_ISFIFO(mode_bits):
                    raise OSError(errno.EINVAL, "not a regular file")
                os.set_blocking(fd, True)
            except BaseException:
                os.close(fd)
                raise
            self._f = open(fd, mode, buffering=0)
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
    with at(path) as (dir_fd, name):
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if dir_fd is not None else 0),
                     dir_fd=dir_fd)
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
        on_disk = lstat(path).st_size
    except OSError as exc:
        raise fs_error(path, exc, "read") from exc
    if on_disk != size:
        raise FileSystemError(f"{path}: {on_disk} bytes on disk after writing {size}; not moved into place")


def place(tmp: Path, dest: Path, *, size: int | None = None) -> None:
    """Rename a complete temporary file onto ``dest`` (atomic); with ``size``, the file on disk
    is checked first."""
    if size is not None:
        check_size(tmp, size)
    try:
        with at(tmp) as (tmp_fd, tmp_name), at(dest) as (dest_fd, dest_name):
            with TEMPORARIES.critical():
                os.replace(tmp_name, dest_name, src_dir_fd=tmp_fd, dst_dir_fd=dest_fd)
                TEMPORARIES.discard(tmp)
    except OSError as exc:
        raise fs_error(dest, exc, "move into place") from exc


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


def copy_file(src: Path, dst: Path, src_fd: int | None = None) -> None:
    """Copy src to dst with the kernel's fast path; an error names the side it belongs to (a
    full or read-only file system is always dst's, whatever the OSError says). ``src_fd``: src
    already open (a cache blob opened without following a link), read from there, not closed."""
    try:
        fin = open(src, "rb") if src_fd is None else open(src_fd, "rb", closefd=False)
        fin.seek(0)
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
