"""A content-addressed store of verified files, shared by threads and processes.

Layout under --cache_dir:
    sha384/<first two hex digits>/<remaining 94>             a verified file
    sha384/<first two hex digits>/<remaining 94>.incomplete  a download in progress (resumable)
    sha384/<first two hex digits>/<remaining 94>.lock        held while that file is fetched
A blob's name is its checksum, so nothing else needs to be trusted: a blob is verified again
whenever it is used, and one that does not match is deleted and fetched anew.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import ContextManager

from filelock import FileLock

from . import fsio
from .errors import ChecksumMismatchError, FileSystemError, SizeMismatchError
from .verify import StreamVerifier, feed_file


class Cache:
    """Verified files by SHA-384, safe for many threads and processes at once.

    Guarantees: a blob is only ever added by renaming a verified file; every use verifies it
    again while copying it out, and a corrupt one is deleted so the caller fetches it anew; one
    inter-process lock per blob means one download per file however many jobs want it. A cache
    the user may not write (a read-only mount of a team's warm cache) still serves the blobs it
    has; nothing is then written to it.

    >>> cache = Cache(Path("~/.cache/modelzoo").expanduser())          # doctest: +SKIP
    >>> with cache.lock(sha):                                          # doctest: +SKIP
    ...     found = cache.copy_to(sha, size, Path("out/.m.bin.part"))
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._store = self.root / "sha384"
        try:
            self._store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            if not self._store.is_dir():
                raise fsio.fs_error(self.root, exc, "use cache folder") from exc
        self.writable = os.access(self._store, os.W_OK)

    def blob_path(self, sha384: str) -> Path:
        return self._store / sha384[:2] / sha384[2:]

    def partial_path(self, sha384: str) -> Path:
        return self.blob_path(sha384).with_suffix(".incomplete")

    def lock(self, sha384: str) -> ContextManager[object]:
        """An inter-process lock for one blob; hold it while checking, fetching or adding that
        blob. A read-only cache has nobody to exclude: no lock is taken there."""
        path = self.blob_path(sha384)
        if not self.writable:
            return contextlib.nullcontext()
        fsio.makedirs(path.parent)
        return _Lock(path.with_suffix(".lock"))

    def copy_to(self, sha384: str, size: int, dst: Path) -> bool:
        """Copy a blob to dst, verifying it on the way. False if there is no (good) blob; a
        corrupt one is deleted (where the cache is writable) so that the caller fetches the file
        again. Errors writing dst are dst's: DiskFullError, OutputNotWritableError."""
        blob = self.blob_path(sha384)
        try:
            src = open(blob, "rb")
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise fsio.fs_error(blob, exc, "read") from exc
        verifier = StreamVerifier(size, sha384)
        with src, fsio.Writer(dst, "wb") as out:
            feed_file(verifier, src, out)
        try:
            verifier.check(str(blob))
        except (SizeMismatchError, ChecksumMismatchError):
            if self.writable:
                blob.unlink(missing_ok=True)
            return False
        return True

    def has_blob(self, sha384: str) -> bool:
        return self.blob_path(sha384).exists()

    def add(self, sha384: str, verified_file: Path, size: int) -> Path:
        """Move a file already verified against sha384 into the store (atomic rename)."""
        blob = self.blob_path(sha384)
        fsio.place(verified_file, blob, size=size)
        return blob


class _Lock:
    """filelock's FileLock, with a lock file that cannot be created reported as our error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path))

    def __enter__(self) -> "_Lock":
        try:
            self._lock.acquire()
        except OSError as exc:
            raise fsio.fs_error(self.path, exc, "create lock file") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._lock.release()
        except OSError as exc:
            if exc_info[0] is None:
                raise FileSystemError(f"cannot release lock file {self.path}: {exc.strerror}") from exc
