"""A content-addressed store of verified files, shared by threads and processes.

Layout under --cache_dir:
    sha384/<first two hex digits>/<remaining 94>             a verified file
    sha384/<first two hex digits>/<remaining 94>.incomplete  a download in progress (resumable)
    sha384/<first two hex digits>/<remaining 94>.lock        held while that file is fetched
A blob's name is its checksum, so nothing else needs to be trusted: a blob is verified again
whenever it is used, and one that does not match is deleted and fetched anew.
"""

from __future__ import annotations

import os
from pathlib import Path

from filelock import FileLock

from .errors import ChecksumMismatchError, OutputNotWritableError, SizeMismatchError
from .verify import StreamVerifier, feed_file


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self._store = self.root / "sha384"
        try:
            self._store.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputNotWritableError(f"cannot use cache folder {self.root}: {exc.strerror}") from exc

    def blob_path(self, sha384: str) -> Path:
        return self._store / sha384[:2] / sha384[2:]

    def partial_path(self, sha384: str) -> Path:
        return self.blob_path(sha384).with_suffix(".incomplete")

    def lock(self, sha384: str) -> FileLock:
        """An inter-process lock for one blob; hold it while checking, fetching or adding that blob."""
        path = self.blob_path(sha384)
        path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(path.with_suffix(".lock")))

    def copy_to(self, sha384: str, size: int, dst: Path) -> bool:
        """Copy a blob to dst, verifying it on the way. False if there is no (good) blob;
        a corrupt one is deleted so that the caller fetches the file again."""
        blob = self.blob_path(sha384)
        try:
            src = open(blob, "rb")
        except FileNotFoundError:
            return False
        verifier = StreamVerifier(size, sha384)
        with src, open(dst, "wb") as out:
            feed_file(verifier, src, out)
        try:
            verifier.check(str(blob))
        except (SizeMismatchError, ChecksumMismatchError):
            blob.unlink(missing_ok=True)
            dst.unlink(missing_ok=True)
            return False
        return True

    def add(self, sha384: str, verified_file: Path) -> Path:
        """Move a file already verified against sha384 into the store (atomic rename)."""
        blob = self.blob_path(sha384)
        os.replace(verified_file, blob)
        return blob
