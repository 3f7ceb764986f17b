"""A content-addressed store of verified files, shared by threads and processes.

Layout under --cache_dir:
    sha384/<first two hex digits>/<remaining 94>             a verified file
    sha384/<first two hex digits>/<remaining 94>.incomplete  a download in progress (resumable)
    sha384/<first two hex digits>/<remaining 94>.lock        held while that file is fetched
    sha384/<first two hex digits>/<remaining 94>.ok          the blob's stat when it was last verified;
                                                             its mtime: when the blob was last used
A blob's name is its checksum. Blobs are read-only; a blob is used without re-reading it only
while its stat (size, mtime, inode) is what it was when it was last verified, and re-hashed
otherwise; one that does not match is deleted and fetched anew.

"Last used" (what pruning goes by, cache_admin.py) is the mtime of a blob's ``.ok`` record: the
warm path reads that record anyway, so knowing its age costs nothing, and it is moved forward at
most once every USE_INTERVAL seconds (one ``utime``), never on a cache that is not writable.

Files go out of the cache as hard links (no copy) when the output folder is on the cache's
file system, as reflinks where the file system clones, as copies otherwise. A hard-linked output
file is the blob: it is read-only, and one edited anyway changes the blob's mtime, so the next
use re-hashes the blob and discards it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from pathlib import Path
TYPE_CHECKING = False  # (typing.TYPE_CHECKING, without importing typing: 2-3 ms of modelzoo-cache verify's start)
if TYPE_CHECKING:
    from typing import Callable, ContextManager

from .. import fsio
from ..errors import CacheFolderError, FileSystemError, SizeMismatchError

FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS, bcachefs): a reflink
USE_INTERVAL = 3600  # seconds: "last used" is recorded at most this often per blob


def default_cache_dir() -> Path:
    """Where a cache lives when the command line names none: ``$XDG_CACHE_HOME/modelzoo``, else
    ``~/.cache/modelzoo`` (the folder the README's examples use)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "modelzoo")


def open_cache(root: Path) -> Cache:
    """An existing cache folder, opened without creating anything in it. A missing folder or a
    file where the folder should be is a CacheFolderError (a usage error)."""
    root = Path(root).absolute()
    if not root.exists():
        raise CacheFolderError(f"cache folder {root} does not exist")
    if not root.is_dir():
        raise CacheFolderError(f"cache folder {root} is not a folder")
    store = root / "sha384"
    if store.exists() and not store.is_dir():
        raise CacheFolderError(f"{store} is not a folder: {root} is not a modelzoo cache")
    return Cache(root, create=False)


class Cache:
    """Verified files by SHA-384, safe for many threads and processes at once.

    Guarantees: a blob is only ever added by renaming a verified file; every use verifies it
    again while copying it out, and a corrupt one is deleted so the caller fetches it anew; one
    inter-process lock per blob means one download per file however many jobs want it. A cache
    the user may not write (a read-only mount of a team's warm cache) still serves the blobs it
    has; nothing is then written to it.

    >>> cache = Cache(Path("~/.cache/modelzoo").expanduser())          # doctest: +SKIP
    >>> with cache.lock(sha):                                          # doctest: +SKIP
    ...     how = cache.export(sha, size, Path("out/.m.bin.part"))  # 'linked', 'cloned', 'copied' or None
    """

    def __init__(self, root: Path, create: bool = True) -> None:
        self.root = Path(root).absolute()
        self._store = self.root / "sha384"
        try:
            if create:
                self._store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise fsio.fs_error(self.root, exc, "use cache folder") from exc
        # A cache we may not write (a read-only mount of a team's cache, even an empty one) is
        # read, never written: no locks, no partials, no new blobs. (create=False: a folder
        # that is not a cache yet counts as writable where its parent folder is.)
        where = self._store if self._store.is_dir() or create else self.root
        self.writable = where.is_dir() and os.access(where, os.W_OK)

    def blob_path(self, sha384: str) -> Path:
        return self._store / sha384[:2] / sha384[2:]

    def partial_path(self, sha384: str) -> Path:
        return self.blob_path(sha384).with_suffix(".incomplete")

    def lock(self, sha384: str, on_wait: Callable[[], None] | None = None) -> ContextManager[object]:
        """An inter-process lock for one blob; hold it while checking, fetching or adding that
        blob. ``on_wait`` is called once if another process holds it for more than a moment.
        A read-only cache has nobody to exclude: no lock is taken there."""
        path = self.blob_path(sha384)
        if not self.writable:
            return contextlib.nullcontext()
        fsio.makedirs(path.parent)
        return _Lock(path.with_suffix(".lock"), on_wait)

    def try_lock(self, sha384: str, shard_fd: int | None = None) -> ContextManager[object] | None:
        """The blob's lock if nobody holds it now, else None (no waiting): what pruning takes
        before it removes anything, so that it never removes a blob or a partial that another
        process is fetching, checking or adding. Only for a writable cache. ``shard_fd``: the
        blob's shard folder, already open (pruning opens it without following a link). A lock
        file that is a symbolic link is never followed (it would create or lock a file outside
        the cache): None, as if held."""
        path = self.blob_path(sha384).with_suffix(".lock")
        try:
            fd = os.open(path if shard_fd is None else path.name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o644, dir_fd=shard_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise fsio.fs_error(path, exc, "create lock file") from exc
        try:
            # filelock's FileLock here is an flock on this same file (left in place between
            # holders), so a plain flock excludes it and is excluded by it, at a 40th of the cost
            # of its acquire: a prune takes one per entry, a thousand at a time.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return None
            lock = _Lock(path)  # a file system without flock: filelock's own fallback decides
            return lock if lock.try_acquire() else None
        return _Flock(fd)

    def has_blob(self, sha384: str) -> bool:
        return self.blob_path(sha384).exists()

    def add(self, sha384: str, verified_file: Path, size: int) -> Path:
        """Move a file already verified against sha384 into the store (atomic rename), read-only,
        and remember its stat."""
        blob = self.blob_path(sha384)
        try:
            verified_file.chmod(0o444)
        except OSError as exc:
            raise fsio.fs_error(verified_file, exc) from exc
        fsio.place(verified_file, blob, size=size)
        self._remember(sha384)
        return blob

    # -- using blobs without copying them

    def record_path(self, sha384: str) -> Path:
        return self.blob_path(sha384).with_suffix(".ok")

    @staticmethod
    def _stat_key(st: os.stat_result) -> str:
        return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_dev}"

    def _remember(self, sha384: str) -> None:
        """Record the stat of a blob just verified; without the record the next use re-hashes."""
        if not self.writable:
            return
        try:
            key = self._stat_key(os.stat(self.blob_path(sha384)))
            fsio.write_bytes(self.record_path(sha384), key.encode())
        except (OSError, FileSystemError):
            pass  # an optimisation only

    def intact(self, sha384: str) -> os.stat_result | None:
        """The blob's stat if it is unchanged since it was verified, else None (no read of the
        blob). Every use of a blob asks this first, so this is also where its use is recorded."""
        blob = self.blob_path(sha384)
        record_path = self.record_path(sha384)
        try:
            st = os.stat(blob)
            # (a record that is a link is no record: its "last use" would be written outside the cache)
            fd = os.open(record_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            rst = os.fstat(fd)
            # a FIFO or a device where the record belongs is no record (a plain read could block)
            record = os.read(fd, 200) if stat.S_ISREG(rst.st_mode) else b""
            if record != self._stat_key(st).encode():
                return None
            if self.writable and time.time() - rst.st_mtime > USE_INTERVAL:
                try:
                    os.utime(fd)  # "last used"; the record's content (the blob's stat) stays
                except OSError:
                    pass  # another user's record, a file system gone read-only: an optimisation only
        except OSError:
            return None
        finally:
            os.close(fd)
        return st

    def intact_of_size(self, sha384: str, size: int, what: str) -> os.stat_result | None:
        """``intact``; a SizeMismatchError if that blob is not of ``size``: the bytes with this
        SHA-384 are known, so it is the expectation (a descriptor) that is wrong, and the blob
        must not be discarded as corrupt."""
        st = self.intact(sha384)
        if st is not None and st.st_size != size:
            raise SizeMismatchError(f"{what} (the descriptor's size; the cache holds the file with its SHA-384)",
                                    size, st.st_size)
        return st

    def trusted(self, sha384: str, size: int) -> os.stat_result | None:
        """``intact``, and of the size the caller expects."""
        st = self.intact(sha384)
        return st if st is not None and st.st_size == size else None

    def holds(self, path: Path, sha384: str, size: int) -> bool:
        """path is a hard link to a blob unchanged since it was verified: it needs no re-hash."""
        st = self.trusted(sha384, size)
        if st is None:
            return False
        try:
            other = os.stat(path)
        except OSError:
            return False
        return (other.st_ino, other.st_dev) == (st.st_ino, st.st_dev)

    def link_at(self, sha384: str, size: int, dest: Path) -> bool:
        """The warm path: a trusted blob hard-linked straight at ``dest``, where nothing is yet.
        A link appears whole or not at all, so no temporary is needed. False when that cannot
        be done (no trusted blob, something at ``dest``, another file system...): the caller then
        goes the long way (``export`` to a temporary, checked and renamed)."""
        if self.trusted(sha384, size) is None:
            return False
        try:
            os.link(self.blob_path(sha384), dest)
        except OSError:
            return False
        return True

    def export(self, sha384: str, size: int, dst: Path, trusted: bool = False) -> str | None:
        """Put the blob at dst (a temporary beside a target): 'linked', 'cloned' or 'copied'; None
        when there is no good blob (a corrupt one is deleted where the cache is writable).
        ``trusted``: the caller has just seen ``trusted()`` say yes."""
        blob = self.blob_path(sha384)
        if not trusted and self.trusted(sha384, size) is None:
            if not blob.exists():
                return None
            from ..verify import file_matches  # (only here: modelzoo-cache and the warm path need no hashing thread)

            if not file_matches(blob, size, sha384):
                if self.writable:
                    fsio.remove(blob)
                    fsio.remove(self.record_path(sha384))
                return None
            self._remember(sha384)
        try:
            os.link(blob, dst)
            return "linked"
        except FileNotFoundError:
            return None  # removed since we looked
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.EACCES):
                raise fsio.fs_error(dst, exc, "link") from exc
        if _clone(blob, dst):
            return "cloned"
        fsio.copy_file(blob, dst)
        return "copied"


def _clone(src: Path, dst: Path) -> bool:
    """A reflink of src at dst where the file system can share blocks; False (and no dst) if not."""
    try:
        with open(src, "rb") as fin, fsio.Writer(dst, "wb") as out:
            fcntl.ioctl(out._f.fileno(), FICLONE, fin.fileno())
        return True
    except OSError:
        dst.unlink(missing_ok=True)
        return False
    except FileSystemError:
        return False


class _Flock:
    """A lock taken by ``try_lock``: closing the descriptor releases it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> "_Flock":
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)


class _Lock:
    """filelock's FileLock, with a lock file that cannot be created reported as our error."""

    WAIT_NOTICE = 2.0  # seconds before saying that another process holds the lock

    def __init__(self, path: Path, on_wait: Callable[[], None] | None = None) -> None:
        from filelock import FileLock  # only a run that fetches needs it

        self.path = path
        self.on_wait = on_wait
        self._lock = FileLock(str(path))
        self._taken = False  # by try_acquire: entering the block then takes it no second time

    def __enter__(self) -> "_Lock":
        from filelock import Timeout

        if self._taken:
            return self
        try:
            try:
                self._lock.acquire(timeout=self.WAIT_NOTICE)
            except Timeout:
                if self.on_wait is not None:
                    self.on_wait()
                self._lock.acquire()
        except OSError as exc:
            raise fsio.fs_error(self.path, exc, "create lock file") from exc
        return self

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False at once if another holder has it."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        except OSError as exc:
            raise fsio.fs_error(self.path, exc, "create lock file") from exc
        self._taken = True
        return True

    def __exit__(self, *exc_info: object) -> None:
        self._taken = False
        try:
            self._lock.release()
        except OSError as exc:
            if exc_info[0] is None:
                raise FileSystemError(f"cannot release lock file {self.path}: {exc.strerror}") from exc
