"""Post-download steps: unpack_archive (refusing hostile members) and regex_replace.

Both stage their output beside the target and rename it into place (fsio), so a failure or
Ctrl-C leaves the model folder as it was.

An archive is hostile when a member would land outside the model folder: an absolute path,
``..``, a member written *through* a link (a link ``l -> ..`` then ``l/x``), a link whose
target, resolved against the links before it, leaves the folder, or a device or fifo. Each
is refused before a byte reaches the model folder.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable

from .. import fsio
from ..descriptor import (
    MAX_DEPTH, MAX_PATH_BYTES, Postproc, RegexReplace, UnpackArchive, regex_output_limit, reserved_name,
)
from ..errors import PostprocessingError, UnsafeArchiveError

_TAR_MODES = {"tar": "r:", "gztar": "r:gz", "bztar": "r:bz2", "xztar": "r:xz"}
CHUNK = 1 << 20
CheckCancel = Callable[[], None]



def has_tar_filters() -> bool:
    """tarfile's extraction filters (filter="data") exist from 3.10.12 and 3.11.4 on; without
    them tar links could escape. setup.cfg requires such a Python; this is the fail-closed check."""
    return hasattr(tarfile, "data_filter")



def _no_cancel() -> None:
    pass


def apply(step: Postproc, model_dir: Path, check_cancel: CheckCancel = _no_cancel) -> None:
    """Run one post-processing step of a descriptor in ``model_dir``."""
    path = model_dir / step.file
    fsio.check_inside(path, model_dir)
    if isinstance(step, UnpackArchive):
        unpack_archive(path, step.format, model_dir, check_cancel)
    else:
        regex_replace(path, step, check_cancel)


# ----------------------------------------------------------------------------- regex_replace

# A descriptor's pattern may backtrack for hours ("(a|aa)+$") and its replacement may multiply
# the file ("a" -> 5,000 characters). The substitution runs in a child process of its own, so
# that a pattern stuck in the regex engine (which holds the GIL) neither freezes this process nor
# survives it: the child is killed after REGEX_SECONDS, on Ctrl-C or SIGTERM (the parent kills it;
# a terminal's SIGINT reaches it too; on Linux it dies with the thread that started it, and
# elsewhere SIGALRM ends it should the parent die first), and it
# refuses, as it substitutes, to produce more than ``regex_output_limit`` bytes.
REGEX_SECONDS = 60.0
_REGEX_CHILD = r"""
import json, os, re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
try:  # Linux: killed with the thread that started it, whatever ends that (even SIGKILL)
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
except (ImportError, OSError, AttributeError):
    pass
data = sys.stdin.buffer.read()
head, _, text = data.partition(b"\n")
job = json.loads(head)
if os.getppid() != job["parent"]:
    sys.exit(1)  # it is gone already
signal.alarm(int(job["seconds"]) + 2)
text = text.decode("utf-8")
room = [job["limit"] - len(text.encode("utf-8"))]
def piece(m):
    out = m.expand(job["replacement"])
    room[0] -= len(out.encode("utf-8")) - len(m.group(0).encode("utf-8"))
    if room[0] < 0:
        raise OverflowError
    return out
try:
    new, n = re.subn(job["pattern"], piece, text, count=job["count"])
except OverflowError:
    sys.stdout.write(json.dumps({"error": "limit"}) + "\n")
except (re.error, IndexError) as exc:
    sys.stdout.write(json.dumps({"error": "replacement", "why": str(exc)}) + "\n")
else:
    sys.stdout.write(json.dumps({"n": n}) + "\n")
    sys.stdout.flush()
    sys.stdout.buffer.write(new.encode("utf-8"))
"""


def _regex_seconds() -> float:
    try:
        return float(os.environ.get("MODELZOO_REGEX_SECONDS", REGEX_SECONDS))
    except ValueError:
        return REGEX_SECONDS


def regex_replace(path: Path, step: RegexReplace, check_cancel: CheckCancel = _no_cancel) -> None:
    """Edit a text file in place; the number of matches must be what the descriptor says
    (count 0: any number but zero). Bounded in time and output (see REGEX_SECONDS)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a folder, or a fifo that would block the read
            raise PostprocessingError(f"regex_replace: {path} is not a regular file")
        raw = path.read_bytes()
        raw.decode("utf-8")
    except FileNotFoundError:
        raise PostprocessingError(f"regex_replace: {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise PostprocessingError(f"regex_replace: {path} is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise PostprocessingError(f"regex_replace: cannot read {path}: {exc.strerror or exc}") from exc
    new, n = _substitute(path, step, raw, check_cancel)
    if n == 0:
        raise PostprocessingError(f"regex_replace: pattern {step.pattern!r} not found in {path}")
    if step.count and n != step.count:
        raise PostprocessingError(f"regex_replace: pattern {step.pattern!r} found {n} times in {path}, "
                                  f"expected {step.count}")
    fsio.write_bytes(path, new, like=path)


def _substitute(path: Path, step: RegexReplace, raw: bytes, check_cancel: CheckCancel) -> tuple[bytes, int]:
    """re.subn in a child process (_REGEX_CHILD): (the new bytes, the number of matches)."""
    import json
    import subprocess
    import threading
    import time

    seconds = _regex_seconds()
    limit = regex_output_limit(len(raw))
    job = json.dumps({"pattern": step.pattern, "replacement": step.replacement, "count": step.count,
                      "limit": limit, "seconds": seconds, "parent": os.getpid()}).encode("utf-8")
    # The input goes through a pipe of our own, fed by a thread: communicate() feeds stdin only on the
    # call that is given the input, so a retry after TimeoutExpired (needed to poll check_cancel) would
    # leave a file larger than the pipe's buffer half-sent and the child waiting for the rest until
    # the deadline, whenever the child (slow to start under load) had not drained the pipe in time.
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _REGEX_CHILD], stdin=read_end,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except BaseException as exc:
        os.close(write_end)
        if isinstance(exc, OSError):
            raise PostprocessingError(f"regex_replace: cannot start {sys.executable}: {exc.strerror or exc}") from exc
        raise
    finally:
        os.close(read_end)
    deadline, message = time.monotonic() + seconds, None
    try:
        try:
            threading.Thread(target=_feed, args=(write_end, job + b"\n" + raw), name="regex-feed",
                             daemon=True).start()
        except BaseException:
            os.close(write_end)  # (no thread to close it; the child is killed below)
            raise
        while True:
            try:
                out, _ = proc.communicate(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                check_cancel()
                if time.monotonic() > deadline:
                    message = (f"regex_replace: pattern {step.pattern!r} took more than {seconds:g} s on {path} "
                               "(a pattern that backtracks without end?)")
                    break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if message:
        raise PostprocessingError(message)
    head, _, new = out.partition(b"\n")
    try:
        result = json.loads(head)
    except ValueError:
        result = {"error": "died", "why": f"exit code {proc.returncode}"}
    if result.get("error") == "limit":
        raise PostprocessingError(f"regex_replace: replacing {step.pattern!r} in {path} would make more than "
                                  f"{limit} bytes of it (at most twice its size plus 1 MiB)")
    if "error" in result:
        raise PostprocessingError(f"regex_replace: pattern {step.pattern!r} on {path}: {result.get('why')}")
    return new, result["n"]


def _feed(fd: int, payload: bytes) -> None:
    """Write the child's whole input, then close the pipe (its EOF starts the substitution)."""
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        pass  # the child is gone (killed at the deadline or on cancel, or died): _substitute reports it
    finally:
        os.close(fd)


# ----------------------------------------------------------------------------- member checks

MAX_NAME = MAX_PATH_BYTES  # PATH_MAX: a longer member name or link target is no file system's
MAX_EXPANSIONS = 40  # links followed for one lookup, as the kernel allows before ELOOP


def _check_name(archive: Path, name: str) -> PurePosixPath:
    member = PurePosixPath(name)
    if not name or member.parts in ((), (".",)):
        raise UnsafeArchiveError(f"{archive}: a member has an empty name")
    if member.is_absolute() or name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path")
    if ".." in member.parts or "\\" in name or "\0" in name:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the model folder")
    if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME or len(member.parts) > MAX_DEPTH:
        raise UnsafeArchiveError(f"{archive}: member {name[:60]!r}... has a path too long or too deep")
    if any(reserved_name(part) for part in member.parts):
        raise UnsafeArchiveError(f"{archive}: member {name[:60]!r} is named like the tools' own temporaries and "
                                 "staging folders")
    return member


class _Tree:
    """The folder an archive is about to create, as a model: which paths are links and where
    they point, so every member and every link target is resolved the way the file system
    will resolve it. Each link is checked when it is read and, since a later link can change
    what an earlier one means, all of them again against the whole archive (``check_all``)."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.links: dict[PurePosixPath, str] = {}
        self.files: set[PurePosixPath] = set()

    def resolve(self, path: PurePosixPath, *, follow_last: bool) -> tuple[str, ...] | None:
        """The path's parts inside the root after following links, or None if it leaves it.
        At most MAX_EXPANSIONS links are followed for one lookup (a link that refers to itself
        twice would otherwise double the work with each link: a few bytes of zip, hours)."""
        return self._resolve(path, follow_last, [MAX_EXPANSIONS])

    def _resolve(self, path: PurePosixPath, follow_last: bool, budget: list[int]) -> tuple[str, ...] | None:
        parts: list[str] = []
        items = list(path.parts)
        for i, part in enumerate(items):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    return None
                parts.pop()
                continue
            candidate = PurePosixPath(*parts, part)
            last = i == len(items) - 1
            if candidate in self.links and (follow_last or not last):
                budget[0] -= 1
                if budget[0] < 0:
                    raise UnsafeArchiveError(f"{self.archive}: too many levels of links (a loop?) at {str(path)!r}")
                target = self.links[candidate]
                if target.startswith("/"):
                    return None
                resolved = self._resolve(PurePosixPath(*parts) / target, True, budget)
                if resolved is None:
                    return None
                parts = list(resolved)
            else:
                parts.append(part)
        return tuple(parts)

    def add_member(self, member: PurePosixPath, *, is_file: bool = False) -> None:
        """A file or folder: no folder on its way may be a link (nothing is written through one)."""
        for parent in list(member.parents)[:-1]:
            if parent in self.links:
                raise UnsafeArchiveError(f"{self.archive}: member {str(member)!r} would be written through "
                                         f"the link {str(parent)!r}")
        if member in self.links:
            raise UnsafeArchiveError(f"{self.archive}: member {str(member)!r} replaces a link of the archive")
        if is_file:
            self.files.add(member)

    def add_link(self, member: PurePosixPath, target: str, hard: bool) -> None:
        self.add_member(member)
        if not target or target.startswith("/") or re.match(r"^[A-Za-z]:", target) or "\0" in target:
            raise UnsafeArchiveError(f"{self.archive}: link {str(member)!r} points to the absolute path {target!r}")
        if len(target.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise UnsafeArchiveError(f"{self.archive}: link {str(member)!r} has a target too long")
        if hard:
            # a hard link names an earlier regular file of the archive, never a path through a link
            if PurePosixPath(target) not in self.files:
                raise UnsafeArchiveError(f"{self.archive}: hard link {str(member)!r} -> {target!r} names no "
                                         "earlier file of the archive")
            self.files.add(member)
            return
        self._check_link(member, target)
        self.links[member] = target

    def _check_link(self, member: PurePosixPath, target: str) -> None:
        if self.resolve(member.parent / target, follow_last=True) is None:
            raise UnsafeArchiveError(f"{self.archive}: link {str(member)!r} -> {target!r} points outside "
                                     "the model folder")

    def check_all(self) -> None:
        """Every link again, now that the archive's last link is known."""
        for member, target in self.links.items():
            self._check_link(member, target)


def _check_tar(archive: Path, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    tree = _Tree(archive)
    for m in members:
        path = _check_name(archive, m.name)
        if m.isdev() or m.isfifo():
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} is a device or fifo")
        if m.issym() or m.islnk():
            tree.add_link(path, m.linkname, hard=m.islnk())
        elif m.isfile() or m.isdir():
            tree.add_member(path, is_file=m.isfile())
        else:
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} has an unsupported type")
    tree.check_all()
    return members


def _zip_kind(info: zipfile.ZipInfo) -> int:
    return stat.S_IFMT(info.external_attr >> 16)


def _zip_link_target(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    """A zip link's target is its content: read no more than a path can be long."""
    if info.file_size > MAX_NAME:
        raise UnsafeArchiveError(f"{archive}: link {info.filename!r} has a target of {info.file_size} bytes")
    with zf.open(info) as f:
        data = f.read(MAX_NAME + 1)
    if len(data) > MAX_NAME:
        raise UnsafeArchiveError(f"{archive}: link {info.filename!r} has a target too long")
    return data.decode("utf-8", "surrogateescape")


def _check_zip(archive: Path, zf: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    tree = _Tree(archive)
    for info in infos:
        path = _check_name(archive, info.filename)
        kind = _zip_kind(info)
        if kind == stat.S_IFLNK:
            tree.add_link(path, _zip_link_target(archive, zf, info), hard=False)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a device, fifo or socket")
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"{archive}: member {info.filename!r} has an unsupported type")
        else:
            tree.add_member(path, is_file=not info.is_dir())
    tree.check_all()
    return infos


# ----------------------------------------------------------------------------- extraction

def _extract_tar(archive: Path, fmt: str, dest: Path, check_cancel: CheckCancel) -> None:
    if not has_tar_filters():
        raise UnsafeArchiveError(f"{archive}: this Python ({sys.version.split()[0]}) lacks tarfile's extraction "
                                 "filters; unpacking tar archives needs Python 3.10.12 / 3.11.4 or later")
    try:
        with tarfile.open(archive, _TAR_MODES[fmt]) as tar:
            for member in _check_tar(archive, tar):
                check_cancel()
                # The 'data' filter repeats our checks and also strips set-uid bits and owners.
                tar.extract(member, dest, filter="data")
    except (tarfile.TarError, EOFError, OSError, KeyError) as exc:
        if isinstance(exc, tarfile.FilterError):
            raise UnsafeArchiveError(f"{archive}: {exc}") from exc
        if isinstance(exc, OSError) and exc.errno is not None:
            raise fsio.fs_error(dest, exc, "unpack into") from exc
        raise PostprocessingError(f"{archive}: cannot unpack as {fmt}: {exc}") from exc


def _extract_zip(archive: Path, dest: Path, check_cancel: CheckCancel) -> None:
    """Our own loop (zipfile.extract would follow links already on disk): folders with mkdir,
    files with exclusive creation (never through a link), links last-created as links."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in _check_zip(archive, zf):
                check_cancel()
                target = dest.joinpath(*PurePosixPath(info.filename).parts)
                kind = _zip_kind(info)
                if info.is_dir() or kind == stat.S_IFDIR:
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if kind == stat.S_IFLNK:
                    target.symlink_to(_zip_link_target(archive, zf, info))
                    continue
                with zf.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(CHUNK):
                        check_cancel()
                        out.write(chunk)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode & 0o755 | 0o600)
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise PostprocessingError(f"{archive}: cannot unpack as zip: {exc}") from exc
    except FileExistsError as exc:
        raise UnsafeArchiveError(f"{archive}: member {exc.filename!r} appears twice") from exc
    except OSError as exc:
        raise fsio.fs_error(dest, exc, "unpack into") from exc


def unpack_archive(archive: Path, fmt: str, model_dir: Path, check_cancel: CheckCancel = _no_cancel) -> None:
    """Unpack into a staging folder, then swap every top-level entry into the archive's own folder
    at once (all or none) and delete the archive. A hostile member stops everything before a byte
    lands. The archive's folder, as omz_downloader does (`shutil.unpack_archive(file, file.parent)`):
    googlenet-v1-tf's `models/research/slim/tf_slim-1.1.0-...whl` unpacks beside it, where the
    descriptor's next step edits `models/research/slim/tf_slim/layers/layers.py`."""
    if not archive.is_file():
        raise PostprocessingError(f"unpack_archive: {archive} does not exist")
    if fmt != "zip" and fmt not in _TAR_MODES:
        raise PostprocessingError(f"{archive}: unknown archive format {fmt!r}")
    # (staged_dir adds the host and 8 characters; a long archive name is cut: the folder must still be a name)
    prefix = f".{fsio.short_name(archive.name, 1 + len('.unpack-') + fsio.staged_extra())}.unpack-"
    with fsio.staged_dir(archive.parent, prefix) as staging:
        if fmt == "zip":
            _extract_zip(archive, staging, check_cancel)
        else:
            _extract_tar(archive, fmt, staging, check_cancel)
        check_cancel()
        entries = sorted(staging.iterdir())
        fsio.check_inside(archive.parent, model_dir)
        fsio.swap_in([(entry, archive.parent / entry.name) for entry in entries])
    if archive.name not in {e.name for e in entries}:
        try:
            archive.unlink(missing_ok=True)
        except OSError as exc:
            raise fsio.fs_error(archive, exc, "remove") from exc
