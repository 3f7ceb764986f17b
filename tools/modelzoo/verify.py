"""Size and SHA-384 checks, computed while bytes stream past: no file is read twice to be verified."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import BinaryIO

from .errors import ChecksumMismatchError, SizeMismatchError

CHUNK = 1 << 20


class StreamVerifier:
    """Counts and hashes bytes as they are written; check() says whether they are the expected file."""

    def __init__(self, expected_size: int, expected_sha384: str) -> None:
        self.expected_size = expected_size
        self.expected_sha384 = expected_sha384.lower()
        self.size = 0
        import hashlib  # here, not at the top: a warm run never hashes (start-up time)

        self._hash = hashlib.sha384()

    def update(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        self._hash.update(chunk)

    @property
    def too_long(self) -> bool:
        return self.size > self.expected_size

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def matches(self) -> bool:
        return self.size == self.expected_size and self.hexdigest() == self.expected_sha384

    def check(self, what: str) -> None:
        """Raise the mismatch that describes these bytes, if any."""
        if self.size != self.expected_size:
            raise SizeMismatchError(what, self.expected_size, self.size, more=self.too_long)
        actual = self.hexdigest()
        if actual != self.expected_sha384:
            raise ChecksumMismatchError(what, self.expected_sha384, actual)


class BackgroundHashing:
    """Counts bytes at once but hashes them on another thread, so that receiving or reading
    the next chunk overlaps with hashing this one: SHA-384 runs at about 500 MB/s here and is
    otherwise the slowest part of a fast download (hashlib releases the GIL). Use as a
    context manager; when it exits, the verifier has seen every byte.

    At most ``depth`` chunks wait (memory: depth x 1 MiB per download, so ``-j 8`` stays small);
    what remains to hash below INLINE_BELOW is hashed inline, as a thread costs more (about
    1 ms to start) than it saves on a small file."""

    INLINE_BELOW = 4 << 20

    def __init__(self, verifier: StreamVerifier, depth: int = 4) -> None:
        self.verifier = verifier
        self._threaded = verifier.expected_size - verifier.size >= self.INLINE_BELOW
        self._queue: queue.Queue[bytes | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, name="sha384", daemon=True)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self.verifier._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        """chunk must not change afterwards (bytes, not a reused buffer)."""
        if not self._threaded:
            self.verifier.update(chunk)
            return
        self.verifier.size += len(chunk)
        self._queue.put(chunk)

    def __enter__(self) -> "BackgroundHashing":
        if self._threaded:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._threaded:
            self._queue.put(None)
            self._thread.join()


def feed_file(verifier: StreamVerifier, src: BinaryIO, dst: BinaryIO | None = None) -> None:
    """Hash (and optionally copy) a file, stopping as soon as it is longer than expected."""
    with BackgroundHashing(verifier) as hasher:
        while chunk := src.read(CHUNK):
            hasher.update(chunk)
            if verifier.too_long:
                return
            if dst is not None:
                dst.write(chunk)


def verify_file(path: Path, size: int, sha384: str, what: str | None = None) -> None:
    """Raise SizeMismatchError/ChecksumMismatchError unless the file at path is exactly the expected one."""
    verifier = StreamVerifier(size, sha384)
    on_disk = path.stat().st_size
    if on_disk != size:
        raise SizeMismatchError(what or str(path), size, on_disk)
    with open(path, "rb") as f:
        feed_file(verifier, f)
    verifier.check(what or str(path))


def file_matches(path: Path, size: int, sha384: str) -> bool:
    try:
        verify_file(path, size, sha384)
    except (OSError, SizeMismatchError, ChecksumMismatchError):
        return False
    return True


def file_digest(path: Path) -> tuple[int, str]:
    """(size, SHA-384 hex) of a file, for writing descriptors."""
    verifier = StreamVerifier(path.stat().st_size, "")
    with open(path, "rb") as f:
        feed_file(verifier, f)
    return verifier.size, verifier.hexdigest()
