"""Managing the cache: what it holds and for which models, whether every blob is still the file
its name says, and removing entries (least recently used first, by age, by model) without ever
taking a file from under another process.

The decisions are pure functions over a ``scan`` (``choose`` says what a prune removes); one
function carries them out (``remove``), so a dry run prints exactly what a real one does.

Guarantees of ``remove`` (and so of ``prune_to`` and ``modelzoo-cache prune``/``rm``):
- an entry another process holds the lock of (fetching, re-hashing or adding that file) is
  skipped and reported, never removed; the cache's warm path takes no lock, and a blob removed
  between its check and its link is simply fetched again (verified), never half-used;
- each entry goes whole: the blob (one unlink) and then its stat record; an output folder's hard
  link to the blob keeps its bytes (only the cache's name goes, so nothing is freed for it);
- one prune at a time per cache (an flock on its ``sha384`` folder): a second is refused;
- a cache that cannot be written is refused before anything is touched.

>>> cache = Cache(Path("~/.cache/modelzoo").expanduser(), create=False)   # doctest: +SKIP
>>> result = prune_to(cache, 20 * 10**9, keep=shas_this_run_used)          # doctest: +SKIP
>>> result.freed                                                           # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import signal
import stat
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, NamedTuple

from . import fsio
from .cache import USE_INTERVAL, Cache
from .errors import CacheBusyError, CacheError, CacheFolderError, OutputNotWritableError

if TYPE_CHECKING:
    from .descriptor import Model

BLOB = "blob"
PARTIAL = "partial"
CORRUPT = "corrupt"
CHANGED = "changed"
UNACCOUNTED = "unaccounted"

_HEX = re.compile(r"[0-9a-f]+")
_REST = 94  # hex digits of a SHA-384 after the two of its shard folder


class Entry(NamedTuple):
    """One file the cache holds: a verified blob or a partial download."""

    sha384: str
    kind: str  # BLOB or PARTIAL
    path: Path
    size: int
    last_used: float  # seconds since the epoch: the stat record's mtime (cache.py), else the file's
    links: int  # st_nlink: above 1 when an output folder holds the same bytes (a hard link)


class Scan(NamedTuple):
    """Everything under ``<cache>/sha384``: the entries, and files the cache did not make
    (``strays``: a temporary a killed process left, anything put there by hand)."""

    entries: list[Entry]
    strays: list[Path]

    def blobs(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == BLOB]

    def partials(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == PARTIAL]


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


def scan(cache: Cache, last_used: bool = True) -> Scan:
    """One pass over the store: a stat per blob, partial and (with ``last_used``) stat record;
    nothing read."""
    store = cache.root / "sha384"
    entries: list[Entry] = []
    strays: list[Path] = []
    try:
        shards = sorted(os.scandir(store), key=lambda d: d.name)
    except FileNotFoundError:
        return Scan(entries, strays)
    except OSError as exc:
        raise fsio.fs_error(store, exc, "read") from exc
    for shard in shards:
        if not (len(shard.name) == 2 and _HEX.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False)):
            strays.append(Path(shard.path))
            continue
        records: dict[str, float] = {}
        files: list[tuple[str, str, os.stat_result, Path]] = []
        for item in os.scandir(shard.path):
            name = item.name
            base, dot, suffix = name.partition(".")
            if len(base) != _REST or not _HEX.fullmatch(base) or suffix not in ("", "ok", "lock", "incomplete"):
                strays.append(Path(item.path))
                continue
            if suffix == "lock" or (suffix == "ok" and not last_used):
                continue
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed since the listing
            if not stat.S_ISREG(st.st_mode):
                strays.append(Path(item.path))
            elif suffix == "ok":
                records[base] = st.st_mtime
            elif suffix in ("", "incomplete"):
                files.append((base, BLOB if suffix == "" else PARTIAL, st, Path(item.path)))
        for base, kind, st, path in files:
            used = records.get(base, st.st_mtime) if kind == BLOB else st.st_mtime
            entries.append(Entry(shard.name + base, kind, path, st.st_size, used, st.st_nlink))
    return Scan(entries, strays)


# -- what models use


class ModelUsage(NamedTuple):
    """One model's share of the cache."""

    name: str
    files: int  # files its descriptor names (of its stages too)
    cached: int  # of those, how many the cache holds as blobs
    bytes: int  # their size
    shared: int  # bytes of those blobs that another of the models also names
    last_used: float | None


def named_by(models: Iterable[Model]) -> dict[str, set[str]]:
    """SHA-384 -> names of the models (top level) whose descriptors name it."""
    names: dict[str, set[str]] = {}
    for model in models:
        for leaf in model.leaf_models():
            for f in leaf.files:
                names.setdefault(f.sha384, set()).add(model.name)
    return names


def usage(models: list[Model], found: Scan) -> tuple[list[ModelUsage], list[Entry]]:
    """Per model what the cache holds of it (models with nothing cached included, in order), and
    the blobs none of the models names."""
    blobs = {e.sha384: e for e in found.blobs()}
    owners = named_by(models)
    rows = []
    for model in models:
        shas = {f.sha384 for leaf in model.leaf_models() for f in leaf.files}
        mine = [blobs[s] for s in shas if s in blobs]
        rows.append(ModelUsage(model.name, len(shas), len(mine), sum(e.size for e in mine),
                               sum(e.size for e in mine if len(owners[e.sha384]) > 1),
                               max((e.last_used for e in mine), default=None)))
    return rows, [e for e in blobs.values() if e.sha384 not in owners]


# -- verify


class Finding(NamedTuple):
    """verify's verdict on one path that is not a good entry."""

    path: Path
    status: str  # CORRUPT, CHANGED or UNACCOUNTED
    detail: str


_buffers = threading.local()


def _hash_blob(entry: Entry) -> Finding | None:
    """Re-hash one blob; a finding if it is not the file its name says, or changed while read.
    Each thread reads into one buffer of its own (a new 1 MiB buffer per blob cost as much as
    hashing the small ones)."""
    import hashlib

    buf = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = bytearray(1 << 20)
    view = memoryview(buf)
    try:
        fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None  # removed since the scan (discarded or pruned by another process): nothing to judge
    except OSError as exc:
        return Finding(entry.path, CORRUPT, f"cannot be read: {exc.strerror}")
    try:
        before = os.fstat(fd)
        digest = hashlib.sha384()
        while n := os.readv(fd, [buf]):
            digest.update(view[:n])
        after = os.fstat(fd)
    except OSError as exc:
        return Finding(entry.path, CORRUPT, f"cannot be read: {exc.strerror}")
    finally:
        os.close(fd)
    try:
        now = os.stat(entry.path)
    except FileNotFoundError:
        return None
    stamp = (before.st_size, before.st_mtime_ns, before.st_ctime_ns, before.st_ino)
    if stamp != (after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino) or \
            stamp != (now.st_size, now.st_mtime_ns, now.st_ctime_ns, now.st_ino):
        return Finding(entry.path, CHANGED, "changed while being verified; verify again")
    actual = digest.hexdigest()
    if actual != entry.sha384:
        return Finding(entry.path, CORRUPT, f"SHA-384 is {actual[:16]}..., its name says {entry.sha384[:16]}...")
    return None


def verify(found: Scan, jobs: int | None = None, progress: Callable[[int], None] | None = None) -> list[Finding]:
    """Re-hash every blob in ``jobs`` (default: every core) forked worker processes, each given
    an equal share of the bytes. Processes, not threads: a zoo's many small files make hashing
    mostly per-file Python work, which threads would take turns at under the GIL (two threads
    were slower than one here). Findings: corrupt blobs, blobs that changed while read, and the
    strays. ``progress`` is called with the bytes of each blob as it is done."""
    blobs = sorted(found.blobs(), key=lambda e: -e.size)
    workers = max(1, min(jobs or os.cpu_count() or 1, len(blobs)))
    shares: list[list[Entry]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for e in blobs:  # the biggest first, each to the least loaded share: they end together
        i = loads.index(min(loads))
        shares[i].append(e)
        loads[i] += e.size
    findings: list[Finding] = []
    if workers == 1:
        for e in blobs:
            if (f := _hash_blob(e)) is not None:
                findings.append(f)
            if progress is not None:
                progress(e.size)
    else:
        findings = _verify_forked(shares, progress)
    findings.sort(key=lambda f: f.path)
    return findings + [Finding(p, UNACCOUNTED, "not made by the cache") for p in found.strays]


def _verify_forked(shares: list[list[Entry]], progress: Callable[[int], None] | None) -> list[Finding]:
    """One child per share; each reports every blob it is done with on a pipe: ``i`` (good) or
    ``i<TAB>status<TAB>detail`` (a finding), one line each."""
    import selectors

    children: dict[int, tuple[int, list[Entry]]] = {}  # read end -> (pid, share)
    done = False
    try:
        for share in shares:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: hash, report, leave without running the parent's cleanup
                code = 1
                try:
                    os.close(r)
                    with open(w, "w", encoding="utf-8", errors="backslashreplace") as out:
                        said = time.monotonic()
                        for i, e in enumerate(share):
                            f = _hash_blob(e)
                            out.write(f"{i}\n" if f is None else f"{i}\t{f.status}\t{f.detail}\n")
                            if time.monotonic() - said > 0.1:  # progress ten times a second, not per blob
                                out.flush()
                                said = time.monotonic()
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            children[r] = (pid, share)
        findings: list[Finding] = []
        pending = {r: b"" for r in children}
        with selectors.DefaultSelector() as sel:
            for r in children:
                sel.register(r, selectors.EVENT_READ)
            while pending:
                for key, _ in sel.select():
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        sel.unregister(key.fd)
                        del pending[key.fd]
                        continue
                    *lines, pending[key.fd] = (pending[key.fd] + chunk).split(b"\n")
                    share = children[key.fd][1]
                    for line in lines:
                        index, *verdict = line.decode("utf-8", "backslashreplace").split("\t", 2)
                        e = share[int(index)]
                        if verdict:
                            findings.append(Finding(e.path, verdict[0], verdict[1]))
                        if progress is not None:
                            progress(e.size)
        done = True
    finally:
        failed = []
        for r, (pid, _) in children.items():
            if not done:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(r)
            if status != 0:
                failed.append(pid)
        if done and failed:  # (an interruption in flight is the news, not its effect on the workers)
            raise CacheError(f"{len(failed)} verify worker process(es) failed")
    return findings


def repair(cache: Cache, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """Remove corrupt blobs (with their records) and strays older than USE_INTERVAL (a younger
    one may be a live temporary); blobs that changed while read stay. Returns (removed, left)."""
    require_writable(cache, "repaired")
    removed, left = [], []
    with _one_prune(cache):
        for f in findings:
            if f.status == CORRUPT and _remove_locked(cache, f.path.parent.name + f.path.name, f.path) is not None:
                removed.append(f)
            elif f.status == UNACCOUNTED and _old(f.path):
                fsio.remove(f.path)
                removed.append(f)
            else:
                left.append(f)
    return removed, left


def _old(path: Path) -> bool:
    try:
        return time.time() - path.lstat().st_mtime > USE_INTERVAL
    except OSError:
        return False


# -- prune


class PruneResult(NamedTuple):
    removed: list[Entry]
    busy: list[Entry]  # held by another process: left alone
    freed: int  # bytes given back to the file system (entries no output folder links to)
    unlinked: int  # bytes of removed blobs that hard-linked outputs still hold


def choose(found: Scan, *, max_bytes: int | None = None, older_than: float | None = None,
           referenced: set[str] | None = None, partials: bool = False, keep: Iterable[str] = (),
           now: float | None = None) -> list[Entry]:
    """What a prune removes, in order (a pure decision): partials (``partials``), blobs whose
    SHA-384 is not in ``referenced`` (when given: what the descriptors name), entries not used for ``older_than`` seconds; then,
    least recently used first, whatever else must go for the rest to fit in ``max_bytes``.
    Nothing in ``keep`` (SHA-384s) is ever chosen."""
    now = time.time() if now is None else now
    kept = set(keep)
    chosen: dict[str, Entry] = {}

    def take(e: Entry) -> None:
        if e.sha384 not in kept:
            chosen.setdefault(f"{e.kind}:{e.sha384}", e)

    for e in found.entries:
        if (partials and e.kind == PARTIAL) \
                or (referenced is not None and e.kind == BLOB and e.sha384 not in referenced) \
                or (older_than is not None and now - e.last_used > older_than):
            take(e)
    if max_bytes is not None:
        rest = sorted((e for e in found.entries if f"{e.kind}:{e.sha384}" not in chosen),
                      key=lambda e: (e.last_used, e.path))
        total = sum(e.size for e in rest)
        for e in rest:
            if total <= max_bytes:
                break
            if e.sha384 not in kept:
                take(e)
                total -= e.size
    return list(chosen.values())


def remove(cache: Cache, entries: list[Entry], on_removed: Callable[[Entry], None] | None = None) -> PruneResult:
    """Remove the entries (see the module's guarantees)."""
    require_writable(cache, "pruned")
    removed, busy, freed, unlinked = [], [], 0, 0
    with _one_prune(cache):
        for e in entries:
            st = _remove_locked(cache, e.sha384, e.path)
            if st is False:
                busy.append(e)
            elif st is not None:
                removed.append(e)
                if st.st_nlink > 1:
                    unlinked += st.st_size
                else:
                    freed += st.st_size
                if on_removed is not None:
                    on_removed(e)
    return PruneResult(removed, busy, freed, unlinked)


def prune_to(cache: Cache, max_bytes: int, keep: Iterable[str] = ()) -> PruneResult:
    """The cache's budget: remove least recently used entries until it holds at most
    ``max_bytes``, never one whose SHA-384 is in ``keep`` (a run passes the files it used) and
    never one another process holds. A CacheBusyError if another prune is running (a caller
    after a run may take that as done by the other), an OutputNotWritableError on a cache that
    cannot be written."""
    return remove(cache, choose(scan(cache), max_bytes=max_bytes, keep=keep))


def _remove_locked(cache: Cache, sha384: str, path: Path) -> os.stat_result | None | bool:
    """Remove one blob (and its record) or partial under its lock: the stat it had, None if it
    was gone already, False if another process holds it."""
    lock = cache.try_lock(sha384)
    if lock is None:
        return False
    with lock:
        try:
            st = os.lstat(path)
            os.unlink(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise fsio.fs_error(path, exc, "remove") from exc
        if not path.name.endswith(".incomplete"):
            try:
                os.unlink(cache.record_path(sha384))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise fsio.fs_error(cache.record_path(sha384), exc, "remove") from exc
    return st


def require_writable(cache: Cache, what: str) -> None:
    """OutputNotWritableError, in one line, for a cache that cannot be written."""
    if not cache.writable:
        raise OutputNotWritableError(f"cache folder {cache.root} cannot be written: it cannot be {what}")


@contextlib.contextmanager
def _one_prune(cache: Cache) -> Iterator[None]:
    """An exclusive flock on the store folder, without waiting: two prunes at once would each
    count what the other removes."""
    store = cache.root / "sha384"
    try:
        fd = os.open(store, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield  # nothing stored, nothing to remove
        return
    except OSError as exc:
        raise fsio.fs_error(store, exc, "open") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise CacheBusyError(f"another prune of {cache.root} is running; try again when it is done") from None
            raise fsio.fs_error(store, exc, "lock") from exc
        yield
    finally:
        os.close(fd)

