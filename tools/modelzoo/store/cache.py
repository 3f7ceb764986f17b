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

Nothing in the store is reached through a link (the store folder itself is followed once: it
is where the user put the cache): shard folders are opened from the store with ``O_NOFOLLOW``
and every file in them by name (``fsio.confine``). What the cache did not make (a link, a FIFO,
a folder where a blob, partial, lock or record belongs; a shard folder that is a link) is
treated as absent: never read, written, chmod'ed or served, replaced under the blob's lock where
the cache needs its place (the link is removed, never its target), reported by
``modelzoo-cache verify`` and removed by ``--repair``.
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
        fsio.confine(self._store)
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

    def _shard(self, sha384: str, create: bool = False) -> int | None:
        """The blob's shard folder, open, reached from the store without following a link; None
        when there is none or what is there is not the cache's (a link, a file: treated as
        absent). ``create`` (a writable cache, on the way to the blob's lock): a missing folder
        is made, and a link or file planted in its place is removed first (the link, never its
        target), so that nothing the cache writes lands outside it."""
        path = self._store / sha384[:2]
        try:
            return fsio.open_dir(path, create=create)
        except OSError as exc:
            if create:
                raise fsio.fs_error(path, exc, "create folder") from exc
            return None

    def lock(self, sha384: str, on_wait: Callable[[], None] | None = None) -> ContextManager[object]:
        """An inter-process lock for one blob; hold it while checking, fetching or adding that
        blob. ``on_wait`` is called once if another process holds it for more than a moment.
        A read-only cache has nobody to exclude: no lock is taken there. Once it is held, what
        the cache did not make at the blob's or the partial download's place (a link, a FIFO, a
        folder; a partial with another name elsewhere) has been removed: the download starts
        afresh there."""
        if not self.writable:
            return contextlib.nullcontext()
        return _BlobLock(self, sha384, on_wait)

    def _clear_planted(self, sha384: str) -> None:
        """Remove what is at the blob's or the partial download's place unless it is a regular
        file (the partial: with no other name, as the cache makes it)."""
        for path, single in ((self.blob_path(sha384), False), (self.partial_path(sha384), True)):
            try:
                st = fsio.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or (single and st.st_nlink != 1):
                fsio.remove(path)  # (inside the store: a link goes, never its target)

    def try_lock(self, sha384: str, shard_fd: int | None = None) -> ContextManager[object] | None:
        """The blob's lock if nobody holds it now, else None (no waiting): what pruning takes
        before it removes anything, so that it never removes a blob or a partial that another
        process is fetching, checking or adding. Only for a writable cache. ``shard_fd``: the
        blob's shard folder, already open (pruning opens it without following a link). A lock
        file that is a symbolic link is never followed (it would create or lock a file outside
        the cache): None, as if held."""
        path = self.blob_path(sha384).with_suffix(".lock")
        try:
            with fsio.at(path) if shard_fd is None else contextlib.nullcontext((shard_fd, path.name)) as (dir_fd, name):
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644,
                             dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise fsio.fs_error(path, exc, "create lock file") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                return None  # a FIFO or a folder there is not the cache's: as if held
            # _Lock (and filelock's FileLock of earlier versions) is an flock on this same file
            # (left in place between holders), so a plain flock excludes it and is excluded by it:
            # a prune takes one per entry, a thousand at a time.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                return None
            raise fsio.fs_error(path, exc, "lock") from exc
        return _Flock(fd)

    def has_blob(self, sha384: str) -> bool:
        """A regular file is where the blob belongs (anything else is not the cache's: absent)."""
        try:
            return stat.S_ISREG(fsio.lstat(self.blob_path(sha384)).st_mode)
        except OSError:
            return False

    def add(self, sha384: str, verified_file: Path, size: int) -> Path:
        """Move a file already verified against sha384 into the store (atomic rename), read-only,
        and remember its stat. (Made read-only through a descriptor of that very regular file:
        a link there is refused, never chmod'ed through.)"""
        blob = self.blob_path(sha384)
        try:
            fd = fsio.open_regular(verified_file)
            try:
                os.fchmod(fd, 0o444)
            finally:
                os.close(fd)
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
            key = self._stat_key(fsio.lstat(self.blob_path(sha384)))
            fsio.write_bytes(self.record_path(sha384), key.encode())
        except (OSError, FileSystemError):
            pass  # an optimisation only

    def intact(self, sha384: str) -> os.stat_result | None:
        """The blob's stat if it is unchanged since it was verified, else None (no read of the
        blob). Every use of a blob asks this first, so this is also where its use is recorded."""
        shard = self._shard(sha384)
        if shard is None:
            return None
        try:
            return self._intact_at(shard, sha384)
        finally:
            os.close(shard)

    def _intact_at(self, shard: int, sha384: str) -> os.stat_result | None:
        """``intact``, in the blob's shard folder (open)."""
        try:
            st = os.stat(sha384[2:], dir_fd=shard, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                return None  # a link or anything else where the blob belongs is not the cache's
            # (a record that is a link is no record: its "last use" would be written outside the cache)
            fd = os.open(sha384[2:] + ".ok", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=shard)
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
        shard = self._shard(sha384)
        if shard is None:
            return False
        try:
            st = self._intact_at(shard, sha384)
            if st is None or st.st_size != size:
                return False
            return _link_out(shard, sha384[2:], st, dest)
        finally:
            os.close(shard)

    def export(self, sha384: str, size: int, dst: Path, trusted: bool = False) -> str | None:
        """Put the blob at dst (a temporary beside a target): 'linked', 'cloned' or 'copied'; None
        when there is no good blob (a corrupt one is deleted where the cache is writable).
        ``trusted``: the caller has just seen ``trusted()`` say yes."""
        blob = self.blob_path(sha384)
        shard = self._shard(sha384)
        if shard is None:
            return None  # no shard folder of the cache's own: nothing it holds
        try:
            try:
                # the blob, opened once without following a link: what is checked, linked or
                # copied is this very file (anything but a regular file there is no blob)
                fd = os.open(sha384[2:], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=shard)
            except OSError:
                return None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    return None
                if not trusted:
                    intact = self._intact_at(shard, sha384)
                    if intact is None or (intact.st_ino, intact.st_dev) != (st.st_ino, st.st_dev) \
                            or intact.st_size != size:
                        if not _matches(fd, size, sha384):
                            if self.writable:
                                fsio.remove(blob)
                                fsio.remove(self.record_path(sha384))
                            return None
                        self._remember(sha384)
                try:
                    if _link_out(shard, sha384[2:], st, dst, strict=True):
                        return "linked"
                    return None  # replaced since we opened it
                except FileNotFoundError:
                    return None  # removed since we looked
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.EACCES):
                        raise fsio.fs_error(dst, exc, "link") from exc
                if _clone(fd, dst):
                    return "cloned"
                fsio.copy_file(blob, dst, src_fd=fd)
                return "copied"
            finally:
                os.close(fd)
        finally:
            os.close(shard)


def _matches(fd: int, size: int, sha384: str) -> bool:
    """The open file is exactly the one of this size and SHA-384."""
    from ..verify import StreamVerifier, feed_file  # (only here: modelzoo-cache and the warm path need no hashing thread)

    verifier = StreamVerifier(size, sha384)
    try:
        with open(fd, "rb", closefd=False) as f:
            feed_file(verifier, f)
    except OSError:
        return False
    return verifier.matches()


def _link_out(shard: int, name: str, st: os.stat_result, dest: Path, strict: bool = False) -> bool:
    """Hard-link the blob ``name`` of the open shard folder at ``dest`` (the link itself, never
    a link's target), and check that the name still was the file whose stat is ``st``: a blob
    replaced meanwhile (by a link, by another file) is taken back, False. Without ``strict``
    any OSError is False too."""
    try:
        os.link(name, dest, src_dir_fd=shard, follow_symlinks=False)
    except OSError:
        if strict:
            raise
        return False
    try:
        made = os.stat(dest, follow_symlinks=False)
    except OSError:
        return False
    if (made.st_ino, made.st_dev) != (st.st_ino, st.st_dev):
        try:
            os.unlink(dest)
        except OSError:
            pass
        return False
    return True


def _clone(src_fd: int, dst: Path) -> bool:
    """A reflink of the open file at dst where the file system can share blocks; False (and no
    dst) if not."""
    try:
        with fsio.Writer(dst, "wb") as out:
            fcntl.ioctl(out._f.fileno(), FICLONE, src_fd)
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


class _BlobLock:
    """``Cache.lock``: the blob's shard folder made the cache's own, the lock taken, then the
    partial download's place cleared of what the cache did not make."""

    def __init__(self, cache: Cache, sha384: str, on_wait: Callable[[], None] | None) -> None:
        self.cache, self.sha384 = cache, sha384
        self._lock = _Lock(cache.blob_path(sha384).with_suffix(".lock"), on_wait)

    def __enter__(self) -> "_BlobLock":
        shard = self.cache._shard(self.sha384, create=True)
        if shard is not None:
            os.close(shard)
        self._lock.__enter__()
        try:
            self.cache._clear_planted(self.sha384)
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._lock.__exit__(*exc_info)


class _Lock:
    """An inter-process lock: an flock on a lock file that stays in place between holders (as
    filelock's FileLock takes it, so each excludes the other). The lock file is opened without
    following a link (nor, in a confined folder, one on the way); one planted as a link is
    replaced by a file of our own. Waiting stays interruptible (Ctrl-C in the main thread)."""

    WAIT_NOTICE = 2.0  # seconds before saying that another process holds the lock

    def __init__(self, path: Path, on_wait: Callable[[], None] | None = None) -> None:
        self.path = path
        self.on_wait = on_wait
        self._fd: int | None = None

    def _open(self) -> int:
        """The lock file's descriptor: a regular file at its name, made if missing."""
        for _ in range(3):
            with fsio.at(self.path, create=True) as (dir_fd, name):
                try:
                    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666,
                                 dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                        raise
                    fd = None
                if fd is not None and stat.S_ISREG(os.fstat(fd).st_mode):
                    return fd
                if fd is not None:
                    os.close(fd)
                # not made by the cache (a link, a FIFO, a folder): removed, a file of ours made
                if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                    os.unlink(name, dir_fd=dir_fd)
                else:
                    import shutil

                    shutil.rmtree(name, dir_fd=dir_fd)
        raise OSError(errno.ELOOP, "something other than a lock file keeps appearing at its place")

    def _take(self, blocking: bool) -> bool:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def __enter__(self) -> "_Lock":
        if self._fd is not None:
            return self  # (taken by try_acquire)
        try:
            deadline = time.monotonic() + self.WAIT_NOTICE
            while not self._take(blocking=False):
                if time.monotonic() >= deadline:
                    if self.on_wait is not None:
                        self.on_wait()
                    self._take(blocking=True)
                    break
                time.sleep(0.05)
        except OSError as exc:
            raise fsio.fs_error(self.path, exc, "create lock file") from exc
        return self

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False at once if another holder has it."""
        try:
            return self._fd is not None or self._take(blocking=False)
        except OSError as exc:
            raise fsio.fs_error(self.path, exc, "create lock file") from exc

    def __exit__(self, *exc_info: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # releases the lock


def run_cache(folder: Path | None, warn: Callable[[str], None], rest: str) -> Cache | None:
    """A run's cache (None without ``--cache_dir``); one that cannot be written is said once, in
    a warning ending with ``rest`` (what the run does about what it does not hold): it still
    serves what it holds."""
    if folder is None:
        return None
    cache = Cache(folder)
    if not cache.writable:
        warn(f"cache folder {cache.root} cannot be written: using what it holds, {rest}")
    return cache
