"""Where a mirror lives: the stores (a folder here; an S3 prefix in s3.py) and the manifest's
codec. The manifest is input from disk (or a bucket) like any other: it is decoded with every
key and entry checked, so nothing it says can point outside DEST.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator, Protocol

from . import fsio
from .errors import MirrorError
from .verify import StreamVerifier, feed_file

MANIFEST = "modelzoo-mirror.json"
FORMAT = "modelzoo-mirror/1"
LOCK = ".modelzoo-mirror.lock"


@dataclass(frozen=True)
class Present:
    """What DEST holds at a path: its size and a stamp that changes when it is replaced."""

    size: int
    stamp: str


class Store(Protocol):
    """A mirror destination (a folder, or a prefix in an S3 bucket)."""

    url: str
    remote: bool  # publishing is an upload (worth overlapping with downloads), not a rename

    def list(self) -> dict[str, Present]:
        """Every file below DEST but the manifest and our temporaries, by path below DEST."""

    def stat(self, rel: str) -> Present | None: ...

    def stored_sha384(self, rel: str) -> str | None:
        """The SHA-384 recorded with the object itself (S3 metadata), or None (folders)."""

    def hash(self, rel: str, cancel: threading.Event) -> tuple[int, str]:
        """Read the file at rel through: (size, SHA-384)."""

    def incoming(self, rel: str) -> contextlib.AbstractContextManager[Path]:
        """A fresh local path to fetch rel into before publishing it (removed afterwards)."""

    def publish(self, rel: str, path: Path, size: int, sha384: str, cancel: threading.Event) -> Present:
        """Put the verified local file at rel (atomically); returns what is there now."""

    def delete(self, rel: str) -> None: ...

    def read_manifest(self) -> tuple[dict[str, Any] | None, Any]:
        """The manifest (None if there is none) and a token for a conditional write."""

    def update_manifest(self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        """Read, change, write back atomically, without losing a concurrent writer's update.
        `change` returns None for "nothing to write". True if something was written."""

    def abort_all(self) -> None:
        """Undo uploads in flight (Ctrl-C)."""


def is_internal(name: str) -> bool:
    """Our own files in DEST that are not mirrored files: the manifest, the lock, temporaries."""
    base = name.rsplit("/", 1)[-1]
    return name in (MANIFEST, LOCK) or (base.startswith(".") and base.endswith((".part", ".tmp", ".old")))


def encode_manifest(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def decode_manifest(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MirrorError(f"{where}: not a modelzoo mirror manifest ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("files"), dict):
        raise MirrorError(f"{where}: not a {FORMAT} manifest")
    return data


class FolderStore:
    """A mirror in a local (or network) folder. Files are renamed into place from temporaries
    beside them; the manifest is rewritten under an flock on DEST/.modelzoo-mirror.lock."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.url = str(self.root)

    def _path(self, rel: str) -> Path:
        return self.root / PurePosixPath(rel)

    @staticmethod
    def _present(st: os.stat_result) -> Present:
        return Present(st.st_size, f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")

    def list(self) -> dict[str, Present]:
        found: dict[str, Present] = {}
        if not self.root.is_dir():
            return found
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                raise fsio.fs_error(folder, exc, "list") from exc
            for e in entries:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    rel = Path(e.path).relative_to(self.root).as_posix()
                    if not is_internal(rel):
                        found[rel] = self._present(e.stat(follow_symlinks=False))
        return found

    def stat(self, rel: str) -> Present | None:
        try:
            return self._present(os.stat(self._path(rel)))
        except FileNotFoundError:
            return None

    def stored_sha384(self, rel: str) -> str | None:
        return None

    def hash(self, rel: str, cancel: threading.Event) -> tuple[int, str]:
        path = self._path(rel)
        try:
            with open(path, "rb") as f:
                verifier = StreamVerifier(os.fstat(f.fileno()).st_size, "")
                feed_file(verifier, f)
        except OSError as exc:
            raise fsio.fs_error(path, exc, "read") from exc
        return verifier.size, verifier.hexdigest()

    @contextlib.contextmanager
    def incoming(self, rel: str) -> Iterator[Path]:
        dest = self._path(rel)
        fsio.makedirs(dest.parent)
        with fsio.temporary_beside(dest) as tmp:
            yield tmp

    def publish(self, rel: str, path: Path, size: int, sha384: str, cancel: threading.Event) -> Present:
        dest = self._path(rel)
        fsio.place(path, dest, size=size)
        return self._present(os.stat(dest))

    def delete(self, rel: str) -> None:
        path = self._path(rel)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise fsio.fs_error(path, exc, "delete") from exc
        folder = path.parent
        while folder != self.root:  # remove folders the deletion emptied
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent

    def read_manifest(self) -> tuple[dict[str, Any] | None, Any]:
        path = self.root / MANIFEST
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise fsio.fs_error(path, exc, "read") from exc
        return decode_manifest(raw, str(path)), None

    def update_manifest(self, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]) -> bool:
        from filelock import FileLock

        fsio.makedirs(self.root)
        try:
            lock = FileLock(str(self.root / LOCK))
            lock.acquire()
        except OSError as exc:
            raise fsio.fs_error(self.root / LOCK, exc, "create lock file") from exc
        try:
            current, _ = self.read_manifest()
            new = change(current)
            if new is None:
                return False
            fsio.write_bytes(self.root / MANIFEST, encode_manifest(new))
            return True
        finally:
            lock.release()

    def abort_all(self) -> None:
        pass  # temporaries are fsio's (TEMPORARIES.remove_all)


def open_store(dest: str, *, s3_endpoint: str | None = None, jobs: int = 8, num_attempts: int = 3,
               timeout: float = 60.0) -> Store:
    """DEST as given on the command line: a folder, a file:// URL or s3://bucket/prefix."""
    if dest.startswith("s3://"):
        from . import s3  # boto3 only when an s3:// destination is used

        return s3.S3Store(dest, endpoint=s3_endpoint, pool=jobs, num_attempts=num_attempts, timeout=timeout)
    if dest.startswith("file://"):
        from urllib.parse import unquote, urlparse

        parsed = urlparse(dest)
        if parsed.netloc not in ("", "localhost"):
            raise MirrorError(f"{dest}: a file:// URL must name a local path (file:///path)")
        return FolderStore(Path(unquote(parsed.path)))
    if "://" in dest:
        raise MirrorError(f"{dest}: expected a folder, a file:// URL or s3://bucket/prefix")
    return FolderStore(Path(dest))


