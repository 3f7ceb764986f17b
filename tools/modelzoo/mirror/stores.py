"""Where a mirror lives: a folder (FolderStore) or an S3 prefix (s3_store.py), opened from
DEST as the command line gives it. What a manifest holds and how it is checked is manifest.py's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from .. import fsio
from ..errors import MirrorError, UsageError
from ..verify import StreamVerifier, feed_file
from .manifest import LOCK, MANIFEST, MAX_MANIFEST, Present, Store, decode_manifest, encode_manifest, is_internal

def link_error(path: Path) -> MirrorError:
    return MirrorError(f"{path}: a symbolic link in the mirror (a mirror holds only folders and files; "
                       "remove the link or mirror to its target)")


class FolderStore:
    """A mirror in a local (or network) folder. Files are renamed into place from temporaries
    beside them; the manifest is rewritten under an flock on DEST/.modelzoo-mirror.lock."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.url = str(self.root)
        self._temporaries: dict[str, int] = {}  # what the last list() found: path -> pid of its maker

    def _path(self, rel: str) -> Path:
        """rel below DEST; a link on the way is refused (publishing must agree with listing,
        which never follows one)."""
        path = self.root
        for part in PurePosixPath(rel).parts:
            path = path / part
            if path.is_symlink():
                raise link_error(path)
        return path

    @staticmethod
    def _present(st: os.stat_result) -> Present:
        return Present(st.st_size, f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}")

    def list(self) -> dict[str, Present]:
        found: dict[str, Present] = {}
        self._temporaries = {}
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
                if e.is_symlink():
                    raise link_error(Path(e.path))
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    rel = Path(e.path).relative_to(self.root).as_posix()
                    pid = fsio.temporary_owner(e.name)
                    if pid is not None:
                        self._temporaries[rel] = pid
                    elif not is_internal(rel):  # (the manifest, the lock, signatures, the SBOM)
                        found[rel] = self._present(e.stat(follow_symlinks=False))
        return found

    def leftovers(self) -> dict[str, str]:
        """Temporaries the last list() found, each with what it is (verify lists them)."""
        return {rel: ("left by a run that was killed (the next sync removes it)" if not fsio.process_alive(pid)
                      else f"a temporary of a run in progress (pid {pid})")
                for rel, pid in sorted(self._temporaries.items())}

    def remove_dead(self) -> list[str]:
        """Remove the temporaries that runs which no longer exist left (found by the last list())."""
        removed = []
        for rel, pid in sorted(self._temporaries.items()):
            if not fsio.process_alive(pid):
                with contextlib.suppress(MirrorError, FileNotFoundError):
                    self._unlink(rel, None)
                    removed.append(rel)
        return removed

    def stat(self, rel: str) -> Present | None:
        try:
            return self._present(os.stat(self._path(rel), follow_symlinks=False))
        except FileNotFoundError:
            return None

    def stored_sha384(self, rel: str) -> str | None:
        return None

    def hash(self, rel: str, cancel: threading.Event) -> tuple[int, str]:
        path = self._path(rel)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO would block the read for ever
                os.close(fd)
                raise OSError(errno.EINVAL, "not a regular file")
            with open(fd, "rb") as f:
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

    def delete(self, rel: str, stamp: str | None = None) -> None:
        """Remove the file at rel, never through a link, and only if it is still the file with
        this stamp (the one the manifest recorded); then the folders that emptied."""
        try:
            self._unlink(rel, stamp)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise fsio.fs_error(self.root / rel, exc, "delete") from exc

    def _unlink(self, rel: str, stamp: str | None) -> None:
        parts = rel.split("/")
        fds = [os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
        try:
            for i, part in enumerate(parts[:-1]):
                try:
                    fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                       dir_fd=fds[-1]))
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise link_error(self.root.joinpath(*parts[:i + 1])) from None
                    raise
            st = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise MirrorError("not a regular file")
            if stamp is not None and self._present(st).stamp != stamp:
                raise MirrorError("it was replaced since this mirror wrote it")
            os.unlink(parts[-1], dir_fd=fds[-1])
            for i in range(len(parts) - 1, 0, -1):  # remove folders the deletion emptied
                try:
                    os.rmdir(parts[i - 1], dir_fd=fds[i - 1])
                except OSError:
                    break
        finally:
            for fd in fds:
                os.close(fd)

    def read_manifest(self) -> tuple[dict[str, Any] | None, Any]:
        path = self.root / MANIFEST
        if path.is_symlink():
            raise link_error(path)
        try:
            raw = fsio.read_small(path, MAX_MANIFEST + 1)  # non-blocking, regular files only, bounded
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise MirrorError(f"{path}: not a regular file") from exc
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
    """DEST as given on the command line: a folder, a file:// URL or s3://bucket/prefix. One that
    is none of these is a UsageError (exit 2), found before any work."""
    from urllib.parse import unquote, urlparse

    if dest.startswith("s3://"):
        if not urlparse(dest).netloc:
            raise UsageError(f"{dest}: expected s3://bucket/prefix (no bucket named)")
        from .s3_store import S3Store  # boto3 only when an s3:// destination is used

        return S3Store(dest, endpoint=s3_endpoint, pool=jobs, num_attempts=num_attempts, timeout=timeout)
    if dest.startswith("file://"):
        parsed = urlparse(dest)
        if parsed.netloc not in ("", "localhost"):
            raise UsageError(f"{dest}: a file:// URL must name a local path (file:///path)")
        return FolderStore(Path(unquote(parsed.path)))
    if "://" in dest:
        raise UsageError(f"{dest}: expected a folder, a file:// URL or s3://bucket/prefix")
    return FolderStore(Path(dest))
